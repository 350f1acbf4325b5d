//! SVG plots (plotters): device rooflines with workload points, a search's Pareto front and its
//! predicted loss against decode speed, and measured against predicted.
//! Each plot is drawn into memory and written atomically.

use crate::error::{Error, Result};
use crate::files::write_atomic;
use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

/// One roof to draw: a device's compute peak and bandwidth.
#[derive(Debug, Clone)]
pub struct RoofLine {
    pub label: String,
    pub peak_flop_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
}

/// One workload point.
#[derive(Debug, Clone)]
pub struct RooflinePoint {
    pub label: String,
    /// Which roof (index into the roofs) it belongs to: sets its colour.
    pub roof: usize,
    /// Which model (index into the models' names) it belongs to: with several models, points
    /// take their model's colour and the roofs turn grey.
    pub model: Option<usize>,
    pub intensity_flop_per_byte: f64,
    pub performance_flop_per_s: f64,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{}: could not draw the plot: {e}", path.display()))
}

/// An SVG of `size` pixels drawn by `draw` on a white area, then written whole to `path`.
fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    write_atomic(path, svg.as_bytes())
}

/// A chart of `X` by `Y` coordinates on an SVG.
type Chart<'c, 'b, X, Y> = ChartContext<'c, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// The frame every plot shares: the title over a cartesian chart of `x` by `y`, with margins
/// and room for the axes' numbers (`y_labels` pixels left of the y axis).
fn frame<'b, 'c, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    path: &Path,
    (title, title_size): (&str, u32),
    y_labels: u32,
    x: X,
    y: Y,
) -> Result<Chart<'c, 'b, X::CoordDescType, Y::CoordDescType>> {
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", title_size))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(x, y)
        .map_err(|e| plot_error(path, e))
}

/// Dots of `(attention kind, x, y)`, one series per kind (in name order, coloured in turn),
/// each named in the legend.
fn by_attention(
    chart: &mut Chart<'_, '_, RangedCoordf64, RangedCoordf64>,
    path: &Path,
    points: &[(&str, f64, f64)],
) -> Result<()> {
    let mut kinds: Vec<&str> = points.iter().map(|p| p.0).collect();
    kinds.sort();
    kinds.dedup();
    for (i, kind) in kinds.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(
                points.iter().filter(|p| p.0 == *kind).map(|&(_, x, y)| Circle::new((x, y), 3, c.mix(0.7).filled())),
            )
            .map_err(|e| plot_error(path, e))?
            .label(kind.to_string())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
    }
    Ok(())
}

/// The series' legend, in the house style, at `position`.
fn legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    path: &Path,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(|e| plot_error(path, e))
}

/// Decade bounds around `lo..hi`.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    // A log axis over an infinite or empty range never ends drawing: keep it finite, at least
    // one decade wide.
    let sane = |v: f64, fallback: f64| if v.is_finite() && v > 0.0 { v.clamp(1e-30, 1e30) } else { fallback };
    let (lo, hi) = (sane(lo, 1e-30), sane(hi, 1e30));
    let a = 10f64.powf(lo.log10().floor());
    let b = 10f64.powf(hi.log10().ceil());
    (a, if b > a { b } else { a * 10.0 })
}

/// A log-log roofline: one polyline per roof (ridge marked), one marker per point.
pub fn roofline_svg(path: &Path, title: &str, roofs: &[RoofLine], points: &[RooflinePoint]) -> Result<()> {
    roofline_svg_models(path, title, roofs, points, &[])
}

/// Greys for roofs when colour tells models apart (the legend names each roof).
const GREYS: [RGBColor; 4] =
    [RGBColor(60, 60, 60), RGBColor(120, 120, 120), RGBColor(165, 165, 165), RGBColor(95, 95, 95)];

/// [`roofline_svg`] with points coloured by model (`models` names them in the legend).
pub fn roofline_svg_models(
    path: &Path,
    title: &str,
    roofs: &[RoofLine],
    points: &[RooflinePoint],
    models: &[String],
) -> Result<()> {
    let by_model = !models.is_empty();
    // Only what a log-log chart can place: positive, finite coordinates.
    let placeable = |x: f64, y: f64| x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0;
    let roofs: Vec<RoofLine> = roofs
        .iter()
        .filter(|r| placeable(r.peak_flop_per_s, r.bandwidth_bytes_per_s))
        .filter(|r| (r.peak_flop_per_s / r.bandwidth_bytes_per_s).is_finite())
        .cloned()
        .collect();
    let points: Vec<RooflinePoint> =
        points.iter().filter(|p| placeable(p.intensity_flop_per_byte, p.performance_flop_per_s)).cloned().collect();
    let (roofs, points) = (&roofs[..], &points[..]);
    write_svg(path, (1000, 700), |root| {
        let lo_i = points
            .iter()
            .map(|p| p.intensity_flop_per_byte)
            .chain(roofs.iter().map(|r| r.peak_flop_per_s / r.bandwidth_bytes_per_s / 100.0))
            .fold(f64::INFINITY, f64::min);
        let hi_i = points
            .iter()
            .map(|p| p.intensity_flop_per_byte)
            .chain(roofs.iter().map(|r| r.peak_flop_per_s / r.bandwidth_bytes_per_s * 10.0))
            .fold(0.0, f64::max);
        let (x0, x1) = decades(lo_i.max(1e-3), hi_i.max(1.0));
        let lo_p = points
            .iter()
            .map(|p| p.performance_flop_per_s)
            .chain(roofs.iter().map(|r| r.bandwidth_bytes_per_s * x0))
            .fold(f64::INFINITY, f64::min);
        let hi_p = roofs.iter().map(|r| r.peak_flop_per_s).fold(0.0, f64::max) * 2.0;
        let (y0, y1) = decades(lo_p.max(1e3), hi_p);
        let mut chart = frame(root, path, (title, 22), 80, (x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("operational intensity (FLOP/byte)")
            .y_desc("attained performance (FLOP/s)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        for (i, r) in roofs.iter().enumerate() {
            let ridge = r.peak_flop_per_s / r.bandwidth_bytes_per_s;
            let c = if by_model { GREYS[i % GREYS.len()] } else { color(i) };
            chart
                .draw_series(LineSeries::new(
                    vec![(x0, r.bandwidth_bytes_per_s * x0), (ridge, r.peak_flop_per_s), (x1, r.peak_flop_per_s)],
                    c.stroke_width(2),
                ))
                .map_err(|e| plot_error(path, e))?
                .label(format!("{} (ridge {:.1} FLOP/B)", r.label, ridge))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            chart
                .draw_series(std::iter::once(TriangleMarker::new((ridge, r.peak_flop_per_s), 7, c.filled())))
                .map_err(|e| plot_error(path, e))?;
        }
        // Labels take turns among places around their points, in order of intensity, so that
        // neighbours (several models at one scenario) do not print over each other.
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| points[a].intensity_flop_per_byte.total_cmp(&points[b].intensity_flop_per_byte));
        let mut place = vec![0usize; points.len()];
        for (rank, &i) in order.iter().enumerate() {
            place[i] = rank % if by_model { 4 } else { 2 };
        }
        for (m, name) in models.iter().enumerate() {
            let c = color(m);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(|e| plot_error(path, e))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
        }
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                let c = color(p.model.unwrap_or(p.roof));
                let left = -8 - 7 * p.label.len() as i32;
                let offset = [(8, -18), (8, 6), (left, -18), (left, 6)][place[i]];
                EmptyElement::at((p.intensity_flop_per_byte, p.performance_flop_per_s))
                    + Circle::new((0, 0), 5, c.filled())
                    + Text::new(p.label.clone(), offset, ("sans-serif", 12).into_font().color(&BLACK))
            }))
            .map_err(|e| plot_error(path, e))?;
        legend(&mut chart, path, SeriesLabelPosition::LowerRight, 13)?;
        Ok(())
    })
}

/// One member of a front for the front plot.
#[derive(Debug, Clone)]
pub struct FrontPoint {
    pub parameters: f64,
    pub rip: f64,
    pub attention: String,
    pub recommended: bool,
}

/// rip against parameters, coloured by attention kind, the recommendation marked.
pub fn front_svg(path: &Path, title: &str, points: &[FrontPoint]) -> Result<()> {
    write_svg(path, (1000, 650), |root| {
        let (px0, px1) =
            points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.parameters), b.max(p.parameters)));
        let (r0, r1) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.rip), b.max(p.rip)));
        let pad = ((r1 - r0) * 0.08).max(1e-4);
        let mut chart =
            frame(root, path, (title, 22), 70, (px0 * 0.97 / 1e6)..(px1 * 1.03 / 1e6), (r0 - pad)..(r1 + pad))?;
        chart
            .configure_mesh()
            .x_desc("parameters (millions)")
            .y_desc("rip (Relative Inference Potential)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let dots: Vec<_> = points.iter().map(|p| (p.attention.as_str(), p.parameters / 1e6, p.rip)).collect();
        by_attention(&mut chart, path, &dots)?;
        if let Some(r) = points.iter().find(|p| p.recommended) {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((r.parameters / 1e6, r.rip))
                        + Cross::new((0, 0), 9, BLACK.stroke_width(3))
                        + Text::new("recommended", (10, -14), ("sans-serif", 14).into_font()),
                ))
                .map_err(|e| plot_error(path, e))?;
        }
        legend(&mut chart, path, SeriesLabelPosition::LowerRight, 14)?;
        Ok(())
    })
}

/// Lines of `y` against `x` (one per series), linear x and log y; for sweeps such as depth.
pub fn sweep_svg(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    write_svg(path, (1000, 650), |root| {
        let all = series.iter().flat_map(|s| s.1.iter());
        let (x0, x1, y0, y1) = all.fold((f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64), |(a, b, c, d), &(x, y)| {
            (a.min(x), b.max(x), c.min(y), d.max(y))
        });
        // Half a decade of room, so a flat series never sits on the frame.
        let (y0, y1) = decades(y0 / 3.0, y1 * 3.0);
        let mut chart = frame(root, path, (title, 22), 80, x0..x1, (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        for (i, (label, pts)) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(|e| plot_error(path, e))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        legend(&mut chart, path, SeriesLabelPosition::UpperRight, 13)?;
        Ok(())
    })
}

/// One labelled point of a measured-against-predicted plot.
#[derive(Debug, Clone)]
pub struct AgreementPoint {
    pub label: String,
    pub predicted: f64,
    pub measured: f64,
    /// Drawn larger and named in the legend (the recommendation).
    pub highlight: bool,
}

/// Measured against predicted on log axes, with the line of perfect agreement and ±25% bands.
pub fn agreement_svg(path: &Path, title: &str, unit: &str, points: &[AgreementPoint]) -> Result<()> {
    let finite: Vec<&AgreementPoint> = points
        .iter()
        .filter(|p| p.predicted.is_finite() && p.measured.is_finite() && p.predicted > 0.0 && p.measured > 0.0)
        .collect();
    if finite.is_empty() {
        return Err(plot_error(path, "no finite, positive points"));
    }
    write_svg(path, (900, 800), |root| {
        let lo = finite.iter().map(|p| p.predicted.min(p.measured)).fold(f64::INFINITY, f64::min);
        let hi = finite.iter().map(|p| p.predicted.max(p.measured)).fold(0.0, f64::max);
        let (a, b) = (lo / 1.6, hi * 1.6);
        let mut chart = frame(root, path, (title, 20), 80, (a..b).log_scale(), (a..b).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(format!("predicted ({unit})"))
            .y_desc(format!("measured ({unit})"))
            .x_label_formatter(&|v| format!("{v:.3}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(vec![(a, a), (b, b)], BLACK.stroke_width(1)))
            .map_err(|e| plot_error(path, e))?
            .label("measured = predicted")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
        for f in [0.75, 1.25] {
            chart
                .draw_series(LineSeries::new(vec![(a, a * f), (b, b * f)], grey.stroke_width(1)))
                .map_err(|e| plot_error(path, e))?;
        }
        let mut order: Vec<usize> = (0..finite.len()).collect();
        order.sort_by(|&x, &y| finite[x].predicted.total_cmp(&finite[y].predicted));
        for (rank, &i) in order.iter().enumerate() {
            let p = finite[i];
            let c = if p.highlight { color(1) } else { color(0) };
            let offset = if rank % 2 == 1 { (8, 6) } else { (8, -18) };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((p.predicted, p.measured))
                        + Circle::new((0, 0), if p.highlight { 7 } else { 5 }, c.filled())
                        + Text::new(p.label.clone(), offset, ("sans-serif", 12).into_font().color(&BLACK)),
                ))
                .map_err(|e| plot_error(path, e))?;
        }
        legend(&mut chart, path, SeriesLabelPosition::UpperLeft, 13)?;
        Ok(())
    })
}

/// One front member for the quality plot.
#[derive(Debug, Clone)]
pub struct QualityPoint {
    pub decode_tokens_per_s: f64,
    pub predicted_loss: f64,
    pub attention: String,
}

/// A labelled candidate on the quality plot (the recommendation, the runner-up, ...).
#[derive(Debug, Clone)]
pub struct Marked {
    pub label: String,
    pub decode_tokens_per_s: f64,
    pub predicted_loss: f64,
}

/// Predicted loss against decode tokens/s, coloured by attention kind, with the marked
/// candidates crossed and labelled: what each token per second costs in quality.
pub fn quality_svg(path: &Path, title: &str, points: &[QualityPoint], marked: &[Marked]) -> Result<()> {
    write_svg(path, (1000, 650), |root| {
        let all = points
            .iter()
            .map(|p| (p.decode_tokens_per_s, p.predicted_loss))
            .chain(marked.iter().map(|m| (m.decode_tokens_per_s, m.predicted_loss)));
        let (x0, x1, y0, y1) = all.fold((f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64), |(a, b, c, d), (x, y)| {
            (a.min(x), b.max(x), c.min(y), d.max(y))
        });
        // Room around the points so that labels and markers stay inside the frame.
        let (xpad, ypad) = (((x1 - x0) * 0.06).max(x1 * 1e-3), ((y1 - y0) * 0.08).max(1e-3));
        let mut chart = frame(root, path, (title, 22), 70, (x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))?;
        chart
            .configure_mesh()
            .x_desc("decode tokens/s")
            .y_desc("predicted pre-training loss (nats/token)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let dots: Vec<_> =
            points.iter().map(|p| (p.attention.as_str(), p.decode_tokens_per_s, p.predicted_loss)).collect();
        by_attention(&mut chart, path, &dots)?;
        // A label goes on the side away from its nearest marked neighbour (above it when that
        // neighbour lies lower), so two close marks never label each other; and left of points in
        // the right half, to stay inside the frame (about 7 pixels a character at this size).
        let (w, h) = ((x1 - x0).max(f64::MIN_POSITIVE), (y1 - y0).max(f64::MIN_POSITIVE));
        let offset: Vec<(i32, i32)> = marked
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let nearest = marked.iter().enumerate().filter(|&(j, _)| j != i).min_by(|(_, a), (_, b)| {
                    let d = |n: &Marked| {
                        ((n.decode_tokens_per_s - m.decode_tokens_per_s) / w)
                            .hypot((n.predicted_loss - m.predicted_loss) / h)
                    };
                    d(a).total_cmp(&d(b))
                });
                let above = nearest.is_none_or(|(_, n)| n.predicted_loss <= m.predicted_loss);
                let x = if m.decode_tokens_per_s > (x0 + x1) / 2.0 { -10 - 7 * m.label.len() as i32 } else { 10 };
                (x, if above { -16 } else { 6 })
            })
            .collect();
        chart
            .draw_series(marked.iter().enumerate().map(|(i, m)| {
                let (x, y) = offset[i];
                // A light box behind the label keeps it readable over a dense front.
                let back = [(x - 2, y - 1), (x + 7 * m.label.len() as i32 + 2, y + 15)];
                EmptyElement::at((m.decode_tokens_per_s, m.predicted_loss))
                    + Rectangle::new(back, WHITE.mix(0.8).filled())
                    + Cross::new((0, 0), 8, BLACK.stroke_width(3))
                    + Text::new(m.label.clone(), offset[i], ("sans-serif", 13).into_font())
            }))
            .map_err(|e| plot_error(path, e))?;
        legend(&mut chart, path, SeriesLabelPosition::UpperLeft, 14)?;
        Ok(())
    })
}
