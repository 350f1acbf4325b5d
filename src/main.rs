use clap::Parser;
use rooflinebench::cli::{run, Cli};
use std::io::Write;

fn main() {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match run(cli, &mut out).and_then(|()| out.flush().map_err(|e| rooflinebench::Error::io("<stdout>", e)))
    {
        Ok(()) => 0,
        // `rooflinebench ... | head` is not an error.
        Err(rooflinebench::Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
