//! The command line's entry point, shared by `rooflinebench` and `rooflinebench-torch` (the same
//! commands, linked with libtorch).

use super::{run, Cli};
use clap::Parser;
use std::io::Write;

/// Parses the arguments, runs the command and exits with its code.
pub fn main() -> ! {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage(e),
    };
    // A build without libtorch hands libtorch's commands to `rooflinebench-torch` beside it:
    // loading libtorch costs every process about 0.3 s, so only those commands pay it.
    if !cfg!(feature = "torch") && cli.needs_torch() {
        if let Some(code) = forward_to_torch_binary() {
            std::process::exit(code);
        }
    }
    // Every command exits 130 on SIGINT, SIGTERM or SIGHUP, removing what it was writing.
    crate::files::interrupt::install();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match run(cli, &mut out).and_then(|()| out.flush().map_err(|e| crate::Error::io("<stdout>", e))) {
        Ok(()) => 0,
        // `rooflinebench ... | head` is not an error.
        Err(crate::Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e @ crate::Error::Regression(_)) => {
            // A report, one difference a line; each line printable.
            let lines: Vec<String> = e.to_string().lines().map(crate::error::printable).collect();
            eprintln!("error: {}", lines.join("\n"));
            e.exit_code()
        }
        Err(e) => {
            // One line of printable characters, not too long, whatever the message holds.
            eprintln!("error: {}", crate::error::printable(&e.to_string()));
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
    eprintln!("error: {} (see --help)", crate::error::clip_line(first));
    std::process::exit(2);
}

/// Runs `rooflinebench-torch` from this executable's folder with the same arguments, when it is
/// there; its exit code (130 when a signal stopped it).
fn forward_to_torch_binary() -> Option<i32> {
    let exe = std::env::current_exe().ok()?;
    let torch = exe.parent()?.join(format!("rooflinebench-torch{}", std::env::consts::EXE_SUFFIX));
    if !torch.is_file() {
        return None;
    }
    let status = std::process::Command::new(&torch).args(std::env::args_os().skip(1)).status().ok()?;
    Some(status.code().unwrap_or(130))
}
