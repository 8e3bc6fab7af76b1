//! ferrotun's control plane as a library: the configuration protocol (UAPI), config files, and
//! the `wg` commands, so the binary and the integration tests share them.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod netlink;
pub mod quick;
pub mod uapi;

/// Top-level dispatch by program name and first argument.
pub fn dispatch(program: &str, args: Vec<String>) -> i32 {
    if program == "wg" {
        return cli::wg_main(&args);
    }
    if program == "wg-quick" {
        return quick::main(program, &args);
    }
    match args.first().map(String::as_str) {
        Some(
            "genkey" | "genpsk" | "pubkey" | "show" | "showconf" | "set" | "setconf" | "addconf"
            | "syncconf",
        ) => cli::wg_main(&args),
        Some("up" | "down" | "save" | "strip") => quick::main(program, &args),
        Some("demo") => demo::main(&args),
        _ => daemon::main(program, &args),
    }
}
