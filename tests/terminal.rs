//! `process.terminal` with `--console-socket`: the pty master arrives over the socket as with
//! runc, and the container process runs on the pty with the configured size.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::process::Stdio;

use common::*;
use serde_json::json;

/// Accept one connection on `listener` and receive (the pty's name, the master fd).
fn receive_master(listener: &UnixListener) -> (String, OwnedFd) {
    let (conn, _) = listener.accept().unwrap();
    cofferdam::receive_console_master(&conn).unwrap()
}

#[test]
fn console_socket_receives_the_pty_master() {
    let env = Env::new("console");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "tty; stty size; [ -t 0 ] && echo stdin-is-a-tty; echo done",
        ],
    );
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 40, "width": 120});
    b.save();
    let sock = env.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = env.id("c");
    let (name, master) = std::thread::scope(|s| {
        let h = s.spawn(|| receive_master(&listener));
        let out = env.cmd(&[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path_str(),
            &id,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        h.join().unwrap()
    });
    assert_eq!(
        name, "/dev/pts/0",
        "the pty is the first of the container's own devpts"
    );
    assert!(env.cmd(&["start", &id]).status.success());
    let mut text = String::new();
    let mut f = std::fs::File::from(master);
    // Reading a pty master ends with EIO once the last peer is closed.
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("done") {
            break;
        }
    }
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert_eq!(
        &lines[..3],
        ["/dev/pts/0", "40 120", "stdin-is-a-tty"],
        "{text:?}"
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn terminal_without_console_socket_is_a_clear_error() {
    let env = Env::new("noconsole");
    let mut b = env.bundle("b", &["true"]);
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
    env.assert_nothing_left(&id);
}

#[test]
fn foreground_run_proxies_the_terminal() {
    let env = Env::new("fgtty");
    // The default spec's interactive shell, fed from our (non-terminal) stdin.
    let mut b = env.bundle("b", &["sh"]);
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let id = env.id("c");
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["run", "--bundle", b.path_str(), &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"echo one-$((40 + 2)); tty; exit 3\n")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("one-42"),
        "the shell's output came through the pty: {text:?}"
    );
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    env.assert_nothing_left(&id);
}
