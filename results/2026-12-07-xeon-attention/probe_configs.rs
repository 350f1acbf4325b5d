// Scratch: write config.json files of attention probe shapes.
use rooflinebench::measure::llamacpp::shapes::{llama, mla};
fn main() {
    let out = std::path::Path::new("/tmp/probe");
    let mut models = Vec::new();
    for hd in [64, 96, 128, 192, 256] {
        models.push(llama(4, 512, 8, 8, hd, 512, 1024));
    }
    for hd in [64, 128] {
        models.push(llama(4, 512, 8, 2, hd, 512, 1024));
        models.push(llama(4, 512, 8, 1, hd, 512, 1024));
    }
    for (r, rope) in [(128, 32), (160, 32), (192, 32), (224, 32), (256, 64), (256, 32), (320, 64), (512, 32), (512, 64)]
    {
        models.push(mla(4, 512, 8, r, rope, 64, 512, 1024, None));
    }
    for m in models {
        let name = format!(
            "{}-rope{}",
            m.name,
            match m.attention {
                rooflinebench::arch::Attention::Latent(l) => l.qk_rope_head_dim,
                _ => 0,
            }
        );
        std::fs::write(
            out.join(format!("{name}.json")),
            serde_json::to_string_pretty(&rooflinebench::arch::export_hf_config(&m)).unwrap(),
        )
        .unwrap();
        println!("{name}");
    }
}
