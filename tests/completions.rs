//! Shell completions and the man page, made from the CLI's own definition: bash loads the
//! completion and completes a subcommand and a model subcommand; zsh's and fish's name gantry;
//! the man page is roff with every subcommand.

mod common;

use std::process::Command;

fn gantry(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_commands_and_their_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gantry.bash");
    std::fs::write(&file, gantry(&["completions", "bash"])).unwrap();
    let complete = |words: &str, cword: usize| {
        let script = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; \
             COMP_POINT=${{#COMP_LINE}}; _gantry gantry; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = complete("gantry mo", 1);
    assert!(first.lines().any(|l| l == "model"), "{first}");
    let sub = complete("gantry model pu", 2);
    assert!(
        sub.lines().any(|l| l == "push") && sub.lines().any(|l| l == "pull"),
        "{sub}"
    );
}

#[test]
fn zsh_and_fish_completions_and_the_man_page() {
    assert!(gantry(&["completions", "zsh"]).starts_with("#compdef gantry"));
    let fish = gantry(&["completions", "fish"]);
    assert!(fish.contains("complete -c gantry"), "{fish}");
    let man = gantry(&["man"]);
    assert!(man.contains(".TH gantry 1"), "{man}");
    assert!(man.contains(".SH NAME"), "{man}");
    for sub in ["run", "model", "gpu", "bench", "serve", "completions"] {
        assert!(
            man.contains(&format!("gantry\\-{sub}")),
            "{sub} not in the man page"
        );
    }
    // A shell that is not one: a clear error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn bash_parses_the_completion_and_man_renders_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let bash = dir.path().join("gantry.bash");
    std::fs::write(&bash, gantry(&["completions", "bash"])).unwrap();
    let out = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
    assert!(out.status.success(), "bash -n: {out:?}");
    let page = dir.path().join("gantry.1");
    std::fs::write(&page, gantry(&["man"])).unwrap();
    let out = match Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .output()
    {
        Ok(o) => o,
        Err(e) => return common::skip(&format!("man cannot run ({e}): install man-db")),
    };
    assert!(out.status.success(), "man -l: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // Rendered, not roff: the section heading without its macro, and a subcommand named.
    assert!(text.lines().any(|l| l.trim() == "NAME"), "{text}");
    assert!(!text.contains(".SH"), "{text}");
    assert!(text.contains("doctor"), "{text}");
}
