//! `report.html`: one self-contained page per search (the summary, the plots inlined as SVG,
//! the top-10 table sortable by a few lines of inline script). It opens from the folder with no
//! server and no network: nothing is loaded from anywhere else.

use super::explain::explain;
use crate::search::SearchSpace;
use crate::search::{FrontRow, SearchReport};
use crate::units::{rate, si};
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// An SVG file's markup, ready to sit inside the page (any XML declaration dropped).
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => "",
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1060px;color:#222}\
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap;font-size:13px}\
table{border-collapse:collapse;font-size:13px;width:100%}\
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:right;white-space:nowrap}\
td:first-child{white-space:normal}\
th:first-child,td:first-child{text-align:left}\
th{cursor:pointer;background:#eee;user-select:none}\
th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}\
tr.recommended{background:#fff6d5;font-weight:bold}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
#recommendation{font-size:1.1em;background:#eef6ee;padding:.6em 1em;border-left:4px solid #2c2}";

/// Sorts the table by a clicked header: numbers by their data-v value, text otherwise; a second
/// click reverses.
const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.querySelectorAll('th');
  heads.forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var d = (x !== null && y !== null) ? parseFloat(x) - parseFloat(y)
          : a.cells[col].textContent.localeCompare(b.cells[col].textContent);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"#;

fn cell(s: &mut String, text: &str, value: Option<f64>) {
    match value {
        Some(v) => {
            let _ = write!(s, "<td data-v=\"{v}\">{}</td>", escape(text));
        }
        None => {
            let _ = write!(s, "<td>{}</td>", escape(text));
        }
    }
}

fn top_table(r: &SearchReport) -> String {
    let mut s = String::from(
        "<table class=\"sortable\" id=\"top\"><thead><tr><th>candidate</th><th>parameters</th><th>rip</th>\
         <th>decode tok/s (80% band)</th><th>TTFT</th><th>TPOT</th><th>memory</th><th>regime</th><th>predicted loss</th></tr></thead><tbody>\n",
    );
    // The recommendation heads the table when the objective's top 10 do not hold it (a rip
    // search picks the fastest decoder within its margin).
    let outside = !r.top.iter().any(|t| t.index == r.recommended.index);
    let rows = outside.then_some(&r.recommended).into_iter().chain(r.top.iter());
    for t in rows {
        let rec = t.index == r.recommended.index;
        s.push_str(if rec { "<tr class=\"recommended\">" } else { "<tr>" });
        let name = match (rec, outside) {
            (true, true) => format!("{} (recommended; not in the top {})", t.label(), r.top.len()),
            (true, false) => format!("{} (recommended)", t.label()),
            _ => t.label(),
        };
        cell(&mut s, &name, None);
        cell(&mut s, &si(t.parameters as f64, ""), Some(t.parameters as f64));
        cell(&mut s, &format!("{:.4}", t.rip), Some(t.rip));
        let decode = match (t.decode_tokens_per_s_low, t.decode_tokens_per_s_high) {
            (Some(lo), Some(hi)) => format!("{} ({}-{})", rate(t.decode_tokens_per_s), rate(lo), rate(hi)),
            _ => rate(t.decode_tokens_per_s),
        };
        cell(&mut s, &decode, Some(t.decode_tokens_per_s));
        cell(&mut s, &si(t.ttft_s, "s"), Some(t.ttft_s));
        cell(&mut s, &si(t.tpot_s, "s"), Some(t.tpot_s));
        cell(&mut s, &si(t.footprint_bytes, "B"), Some(t.footprint_bytes));
        cell(&mut s, t.regime, None);
        cell(&mut s, &format!("{:.4}", t.predicted_loss), Some(t.predicted_loss));
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
    s
}

fn headline(rec: &FrontRow) -> String {
    format!(
        "Recommended: {} ({} parameters, decode {} tok/s, TTFT {}, memory {})",
        rec.label(),
        si(rec.parameters as f64, ""),
        rate(rec.decode_tokens_per_s),
        si(rec.ttft_s, "s"),
        si(rec.footprint_bytes, "B")
    )
}

/// The page. `svgs` are (caption, SVG markup) of the plots written beside it.
pub fn report_html(r: &SearchReport, space: &SearchSpace, svgs: &[(&str, String)]) -> String {
    let mut s = String::new();
    let title = format!("{} on {}", r.space, r.device);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(s, "<h1>Search <code>{}</code> on <code>{}</code></h1>", escape(&r.space), escape(&r.device));
    if !space.description.is_empty() {
        let _ = writeln!(s, "<p>{}</p>", escape(&space.description));
    }
    let _ = writeln!(s, "<p>Objective: {}.</p>", escape(r.objective.describe()));
    let _ = writeln!(s, "<p id=\"recommendation\">{}</p>", escape(&headline(&r.recommended)));
    let _ = writeln!(s, "<h2>Summary</h2>\n<pre id=\"summary\">{}</pre>", escape(&explain(r)));
    let _ = writeln!(
        s,
        "<h2>Top {} by objective</h2>\n<p>Click a column to sort by it (again to reverse).</p>",
        r.top.len()
    );
    s.push_str(&top_table(r));
    let _ = writeln!(s, "<h2>Plots</h2>");
    for (caption, svg) in svgs {
        let _ = writeln!(s, "<figure>{}<figcaption>{}</figcaption></figure>", inline_svg(svg), escape(caption));
    }
    let _ = writeln!(
        s,
        "<p>Files beside this page: pareto.csv (the front, {} members), recommended.json (a Hugging Face config.json), summary.md, outcome.json.</p>",
        r.outcome.front.len()
    );
    let _ = write!(s, "<script>{SCRIPT}</script>\n</body></html>\n");
    s
}
