//! A process's stdio as containerd gives it: paths of FIFOs (any may be empty), or a terminal.
//!
//! Without a terminal, stdout and stderr are the FIFOs themselves, opened for writing and
//! given to the process (no copy through the shim); the shim keeps a read end of each open,
//! unread, so that a process writing while containerd restarts (and its reader is gone)
//! does not get EPIPE. stdin goes through a pipe that a thread fills from the FIFO, since a
//! FIFO's reader sees end-of-file whenever no writer is connected, which containerd's
//! client only is some time after the process starts. With a terminal, threads copy between
//! the FIFOs and the master of the pty.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cofferdam::StdioFds;

/// The paths containerd gave for a process.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The fds a process is created with; dropped (closed in the shim) once it runs.
pub struct Pending {
    stdin: File,
    stdout: File,
    stderr: File,
    /// Kept for the process's life: the unread read ends of the output FIFOs.
    keep: Vec<OwnedFd>,
    /// The FIFO end the stdin thread fills the process's pipe from, and the pipe's write end.
    stdin_feed: Option<(String, File)>,
}

/// Where a process's stdin comes from: the FIFO, and the end the shim writes (the pipe's,
/// or the pty's master), until `close_io` or the FIFO's end closes it.
struct StdinFeed {
    fifo: String,
    to: Mutex<Option<File>>,
}

/// What the shim keeps of a running process's stdio.
#[derive(Default)]
pub struct Live {
    _keep: Vec<OwnedFd>,
    stdin: Option<Arc<StdinFeed>>,
    /// The pty's master, for resize.
    pub master: Option<File>,
    /// Set when the terminal's output has been copied out to the end.
    pub drained: Option<Receiver<()>>,
}

impl Live {
    /// `close_io`: the process's stdin ends. containerd's client asks for it when its own
    /// stdin ends, which may be before it ever opened the FIFO for writing: the copy, which
    /// may still wait in that open, is let go with a writer that closes at once.
    pub fn close_stdin(&mut self) {
        let Some(feed) = self.stdin.take() else {
            return;
        };
        let to = feed.to.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(to);
        let _ = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&feed.fifo);
    }

    /// Wait (a bounded time) until everything the terminal printed is in the stdout FIFO,
    /// so that the exit event does not overtake the last output.
    pub fn wait_drained(&mut self) {
        if let Some(rx) = self.drained.take() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

fn open_write(path: &str, keep: &mut Vec<OwnedFd>) -> std::io::Result<File> {
    if path.is_empty() {
        return OpenOptions::new().write(true).open("/dev/null");
    }
    // A reader of our own first (non-blocking: there may be no writer), so that the open for
    // writing does not wait for containerd's reader.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let w = OpenOptions::new().write(true).open(path)?;
    keep.push(reader.into());
    Ok(w)
}

impl Pending {
    /// Open what a process without a terminal gets. A terminal's process gets /dev/null
    /// here; the pty replaces it.
    pub fn open(p: &Paths) -> std::io::Result<Pending> {
        let mut keep = Vec::new();
        if p.terminal {
            let null = |w: bool| OpenOptions::new().read(!w).write(w).open("/dev/null");
            return Ok(Pending {
                stdin: null(false)?,
                stdout: null(true)?,
                stderr: null(true)?,
                keep,
                stdin_feed: None,
            });
        }
        let stdout = open_write(&p.stdout, &mut keep)?;
        let stderr = if p.stderr == p.stdout && !p.stdout.is_empty() {
            stdout.try_clone()?
        } else {
            open_write(&p.stderr, &mut keep)?
        };
        let (stdin, stdin_feed) = if p.stdin.is_empty() {
            (File::open("/dev/null")?, None)
        } else {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            (File::from(r), Some((p.stdin.clone(), File::from(w))))
        };
        Ok(Pending {
            stdin,
            stdout,
            stderr,
            keep,
            stdin_feed,
        })
    }

    pub fn fds(&self) -> StdioFds {
        StdioFds {
            stdin: self.stdin.as_raw_fd(),
            stdout: self.stdout.as_raw_fd(),
            stderr: self.stderr.as_raw_fd(),
        }
    }

    /// The process runs: close the shim's copies of its stdio, start the copies it needs.
    pub fn running(self, p: &Paths, master: Option<OwnedFd>) -> std::io::Result<Live> {
        let Pending {
            keep: mut kept,
            stdin_feed,
            ..
        } = self;
        let mut live = Live::default();
        if let Some((fifo, pipe)) = stdin_feed {
            live.stdin = Some(feed_stdin(fifo, pipe));
        }
        if let Some(master) = master {
            let master = File::from(master);
            if !p.stdin.is_empty() {
                live.stdin = Some(feed_stdin(p.stdin.clone(), master.try_clone()?));
            }
            let out = open_write(&p.stdout, &mut kept)?;
            let from = master.try_clone()?;
            let (tx, rx) = channel();
            spawn_copy("tty out", move || {
                copy(from, out);
                let _ = tx.send(());
            });
            live.master = Some(master);
            live.drained = Some(rx);
        }
        live._keep = kept;
        Ok(live)
    }
}

/// Copy the stdin FIFO to `to` in a thread, through a slot that `close_stdin` can empty.
fn feed_stdin(fifo: String, to: File) -> Arc<StdinFeed> {
    let feed = Arc::new(StdinFeed {
        fifo,
        to: Mutex::new(Some(to)),
    });
    let f = feed.clone();
    spawn_copy("stdin", move || {
        let Ok(mut from) = File::open(&f.fifo) else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let mut to = f.to.lock().unwrap_or_else(|e| e.into_inner());
            match to.as_mut().map(|t| t.write_all(&buf[..n])) {
                Some(Ok(())) => {}
                _ => break,
            }
        }
        // The FIFO's end is the process's end of file.
        f.to.lock().unwrap_or_else(|e| e.into_inner()).take();
    });
    feed
}

fn spawn_copy(name: &str, f: impl FnOnce() + Send + 'static) {
    // Small stacks: a copy needs a buffer and little else.
    if let Err(e) = std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 << 10)
        .spawn(f)
    {
        log::error!("spawn the {name} copy: {e}");
    }
}

/// Copy until end-of-file or an error (EIO from a master whose terminal is closed).
fn copy(mut from: File, mut to: File) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Set the size of a terminal (`resize_pty`).
pub fn resize(master: &File, width: u32, height: u32) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass; the fd is the pty master we hold.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
