//! Names the commit a binary was built from, for `ringway --version`.
//!
//! Sets `RINGWAY_COMMIT` for the crate: the short hash of `HEAD`, with `-dirty` when tracked
//! files differ from it (untracked files do not count, as with `git describe --dirty`), or
//! `unknown` when there is no git, no repository, or the repository found is not this crate's
//! own (a crates.io tarball unpacked inside some other checkout, `cargo package`'s copy under
//! `target/`). It never fails the build.
//!
//! It reruns only when what it reports can change: `HEAD`, the branch `HEAD` points to,
//! `packed-refs`, the index, and the sources (`src/`, the manifest, the lock file, this file),
//! so an ordinary rebuild does not run git again.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut commit = None;
    if is_own_repository(&dir) {
        watch_git(&dir);
        for source in ["src", "Cargo.toml", "Cargo.lock"] {
            println!("cargo::rerun-if-changed={source}");
        }
        commit = describe(&dir);
    }
    let commit = commit.as_deref().unwrap_or("unknown");
    println!("cargo::rustc-env=RINGWAY_COMMIT={commit}");
}

/// Runs git in `dir`; its trimmed standard output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// Whether `dir` is the top of a git work tree (not a directory inside another one).
fn is_own_repository(dir: &Path) -> bool {
    let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    match (Path::new(&top).canonicalize(), dir.canonicalize()) {
        (Ok(top), Ok(dir)) => top == dir,
        _ => false,
    }
}

/// `b4446bd` or `b4446bd-dirty`.
fn describe(dir: &Path) -> Option<String> {
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    // Without optional locks, `status` does not rewrite the index it watches (a refresh would
    // make the next build run this script again).
    let status = git(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )?;
    Some(if status.is_empty() {
        hash
    } else {
        format!("{hash}-dirty")
    })
}

/// Reruns the script when `HEAD`, its branch, `packed-refs` or the index change. Asks git
/// where they are: in a linked work tree `.git` is a file, `HEAD` and the index are in the
/// work tree's own git directory and the refs in the common one. Only files that exist are
/// named: Cargo reruns the script on every build for a path that does not.
fn watch_git(dir: &Path) {
    let mut files = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        files.push(branch);
    }
    for file in files {
        let Some(path) = git(dir, &["rev-parse", "--git-path", &file]) else {
            continue;
        };
        let path = dir.join(path);
        if path.exists() {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
}
