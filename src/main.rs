use clap::Parser;
use rooflinebench::cli::{run, Cli};
use std::io::Write;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage(e),
    };
    // Every command exits 130 on SIGINT, SIGTERM or SIGHUP, removing what it was writing.
    rooflinebench::files::interrupt::install();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match run(cli, &mut out).and_then(|()| out.flush().map_err(|e| rooflinebench::Error::io("<stdout>", e)))
    {
        Ok(()) => 0,
        // `rooflinebench ... | head` is not an error.
        Err(rooflinebench::Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e @ rooflinebench::Error::Regression(_)) => {
            // A report, one difference a line; each line printable.
            let lines: Vec<String> = e.to_string().lines().map(rooflinebench::error::printable).collect();
            eprintln!("error: {}", lines.join("\n"));
            e.exit_code()
        }
        Err(e) => {
            // One line of printable characters, not too long, whatever the message holds.
            eprintln!("error: {}", rooflinebench::error::printable(&e.to_string()));
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// Help and version print as clap prints them; a usage error is one line, naming the flag.
fn exit_on_usage(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // The first paragraph (a missing argument's names follow on indented lines), joined.
    let text = e.to_string();
    let first: Vec<&str> =
        text.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
    let first = first.join(" ");
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    eprintln!("error: {} (see --help)", rooflinebench::error::clip_line(first));
    std::process::exit(2);
}
