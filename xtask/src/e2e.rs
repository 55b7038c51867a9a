//! `cargo xtask e2e`: the web inbox in a real browser.
//!
//! Installs what it needs (Debian's `chromium` when `/usr/bin/chromium` is missing; the pinned
//! `playwright-core` from `tests/e2e/package-lock.json` with `npm ci`, which downloads no
//! browser), builds the release binary, creates a user, an admin and a service key with the
//! `tidings` CLI on a fresh SQLite database, starts the server on a free port, and runs
//! `tests/e2e/test.mjs` against it in headless Chromium. Screenshots go to `target/e2e/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use serde_json::Value;

use crate::util::{self, Result, TempDir};

const CHROMIUM: &str = "/usr/bin/chromium";

#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Use the binary already built instead of building it.
    #[arg(long)]
    no_build: bool,
    /// Use a debug build (quicker to build while working on the page) instead of a release one.
    #[arg(long)]
    debug: bool,
}

pub fn run(args: E2eArgs) -> Result<bool> {
    let root = util::workspace_root();
    let chromium = ensure_chromium()?;
    let here = root.join("tests").join("e2e");
    eprintln!("Installing the browser driver (npm ci)…");
    util::run_inherited(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&here),
    )?;
    let binary = if args.debug {
        debug_binary(&root, args.no_build)?
    } else {
        util::release_binary(args.no_build)?
    };

    let dir = TempDir::new("tidings-e2e")?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("tidings.db").display());
    let (user_email, user_password) = ("alice@example.com", "alice-e2e-password");
    let (admin_email, admin_password) = ("ada@example.com", "ada-e2e-password");
    let user = cli_json(
        &binary,
        &database_url,
        &[
            "users",
            "create",
            "--email",
            user_email,
            "--password",
            user_password,
            "--name",
            "Alice Martin",
        ],
    )?;
    let user_id = user["id"]
        .as_str()
        .ok_or_else(|| format!("users create printed no id: {user}"))?
        .to_owned();
    cli_json(
        &binary,
        &database_url,
        &[
            "users",
            "create",
            "--email",
            admin_email,
            "--password",
            admin_password,
            "--name",
            "Ada Admin",
            "--admin",
        ],
    )?;
    let key = cli(&binary, &database_url, &["keys", "create", "--name", "e2e"])?
        .trim()
        .to_owned();

    let server = util::start_server(&binary, &database_url, &dir, &[])?;
    let screenshots = target_dir(&root).join("e2e");
    eprintln!("Driving Chromium against http://{}…", server.addr);
    let result = util::run_inherited(
        Command::new("node")
            .arg("test.mjs")
            .current_dir(&here)
            .env("E2E_BASE_URL", format!("http://{}", server.addr))
            .env("E2E_SERVICE_KEY", key)
            .env("E2E_USER_EMAIL", user_email)
            .env("E2E_USER_PASSWORD", user_password)
            .env("E2E_USER_ID", &user_id)
            .env("E2E_ADMIN_EMAIL", admin_email)
            .env("E2E_ADMIN_PASSWORD", admin_password)
            .env("E2E_SCREENSHOTS", &screenshots)
            .env("E2E_CHROMIUM", &chromium),
    );
    let errors = server.error_lines();
    if result.is_err() {
        eprintln!(
            "Server log (last 30 lines):\n{}",
            util::tail(&server.log, 30)
        );
    }
    result?;
    if errors > 0 {
        eprintln!("{}", util::tail(&server.log, 30));
        return Err(format!("the server logged {errors} error line(s)"));
    }
    Ok(true)
}

/// `/usr/bin/chromium`, installed from Debian's packages when missing (as root, as on CI).
fn ensure_chromium() -> Result<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Ok(path);
    }
    eprintln!("Installing chromium (apt-get)…");
    let install = || {
        util::run_inherited(
            Command::new("apt-get")
                .args(["install", "-y", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        util::run_inherited(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        install()?;
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{CHROMIUM} is still missing after apt-get install"))
    }
}

fn debug_binary(root: &Path, no_build: bool) -> Result<PathBuf> {
    if !no_build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        util::run_inherited(
            Command::new(cargo)
                .args(["build", "--quiet", "-p", "tidings-gateway"])
                .current_dir(root),
        )?;
    }
    let binary = target_dir(root).join("debug").join("tidings");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("{} does not exist", binary.display()))
    }
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_relative() => root.join(dir),
        Some(dir) => dir,
        None => root.join("target"),
    }
}

/// Runs a `tidings` subcommand on the database; its standard output.
fn cli(binary: &Path, database_url: &str, args: &[&str]) -> Result<String> {
    util::run_captured(
        Command::new(binary)
            .args(args)
            .env("TIDINGS_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn"),
    )
}

fn cli_json(binary: &Path, database_url: &str, args: &[&str]) -> Result<Value> {
    let out = cli(binary, database_url, args)?;
    serde_json::from_str(out.trim()).map_err(|e| format!("tidings {args:?} printed {out:?}: {e}"))
}
