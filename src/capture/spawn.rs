//! Starting the command: directly (no shell), in its own process group so signals can be
//! forwarded to all of it. When gantry owns the terminal, the command's group becomes the
//! terminal's foreground group, so Ctrl-C and reads from the keyboard reach it as if it ran
//! alone. Its stdout and stderr are pseudo-terminals when gantry's are terminals (progress bars
//! and colours keep working; one pty for both when both are the same terminal, so their order
//! is kept), pipes otherwise.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

pub struct Spawned {
    pub child: Child,
    pub pgid: i32,
    pub stdout: Box<dyn io::Read + Send>,
    pub stderr: Box<dyn io::Read + Send>,
    /// Pty masters, to pass on window-size changes.
    pub ptys: Vec<OwnedFd>,
    /// Whether the command's group took the terminal's foreground; hand it back with `reclaim`.
    pub foreground: bool,
}

pub struct Options<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    /// No terminal at all: stdin from /dev/null, output through pipes.
    pub detached: bool,
}

pub fn spawn(opts: &Options) -> io::Result<Spawned> {
    let (program, args) = opts
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in opts.env {
        cmd.env(k, v);
    }
    let mut ptys = Vec::new();
    let out_tty = !opts.detached && io::stdout().is_terminal();
    let err_tty = !opts.detached && io::stderr().is_terminal();
    let (out_r, err_r): (Box<dyn io::Read + Send>, Box<dyn io::Read + Send>) =
        if out_tty && err_tty && same_terminal() {
            // One pty for both, as on a real terminal: what the command writes to stdout and stderr
            // keeps its order (a prompt on stderr stays after the line printed before it).
            let (master, slave) = open_pty()?;
            let reader = File::from(master.try_clone()?);
            ptys.push(master);
            cmd.stdout(Stdio::from(slave.try_clone()?))
                .stderr(Stdio::from(slave));
            (Box::new(reader), Box::new(io::empty()))
        } else {
            let (out_r, out_w) = output_pair(out_tty, &mut ptys)?;
            let (err_r, err_w) = output_pair(err_tty, &mut ptys)?;
            cmd.stdout(out_w).stderr(err_w);
            (out_r, err_r)
        };
    // SAFETY: getpgrp/tcgetpgrp have no preconditions.
    let foreground = !opts.detached
        && io::stdin().is_terminal()
        && unsafe { libc::tcgetpgrp(0) == libc::getpgrp() };
    if opts.detached {
        cmd.stdin(Stdio::null());
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if foreground {
                // We are in the background now: ignore SIGTTOU while taking the terminal.
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
                libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(cmd); // closes our copies of the pty slaves, so the masters see the end of output
    let pgid = child.id() as i32;
    Ok(Spawned {
        child,
        pgid,
        stdout: out_r,
        stderr: err_r,
        ptys,
        foreground,
    })
}

/// Whether our stdout and stderr are the same terminal device.
fn same_terminal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |fd: i32| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|m| m.rdev())
    };
    matches!((dev(1), dev(2)), (Some(a), Some(b)) if a == b)
}

/// A reader for us and the Stdio for the child: a pty pair or a pipe.
fn output_pair(
    pty: bool,
    ptys: &mut Vec<OwnedFd>,
) -> io::Result<(Box<dyn io::Read + Send>, Stdio)> {
    if pty {
        let (master, slave) = open_pty()?;
        let reader = File::from(master.try_clone()?);
        ptys.push(master);
        return Ok((Box::new(reader), Stdio::from(slave)));
    }
    let (r, w) = io::pipe()?;
    Ok((Box::new(r), Stdio::from(w)))
}

fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut master = -1;
    let mut slave = -1;
    let ws = window_size();
    // SAFETY: valid out-pointers; name and termios may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openpty returned two fresh descriptors that we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl/tcgetattr/tcsetattr on descriptors we own, with a valid termios.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        // Pass output through unchanged (no \n -> \r\n); our own terminal does that on display.
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut t) == 0 {
            t.c_oflag &= !libc::OPOST;
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
    Ok((master, slave))
}

fn window_size() -> libc::winsize {
    // SAFETY: TIOCGWINSZ writes a winsize; a zeroed one stays when stdout is not a terminal.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        libc::ioctl(1, libc::TIOCGWINSZ, &mut ws);
        if ws.ws_col == 0 {
            ws.ws_col = 80;
            ws.ws_row = 24;
        }
        ws
    }
}

/// Give the ptys our terminal's current size (on SIGWINCH).
pub fn resize(ptys: &[OwnedFd]) {
    let ws = window_size();
    for p in ptys {
        // SAFETY: TIOCSWINSZ on a pty master we own, with a valid winsize.
        unsafe { libc::ioctl(p.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// Take the terminal's foreground back after the command ended.
pub fn reclaim_terminal() {
    // SAFETY: plain libc calls; SIGTTOU is ignored around tcsetpgrp so a background caller is not
    // stopped, then its previous disposition is put back.
    unsafe {
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, libc::getpgrp());
        libc::signal(libc::SIGTTOU, old);
    }
}

/// Send a signal to the command's whole process group.
pub fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: kill with a negative pid signals a process group; errors (already gone) are fine.
    unsafe { libc::kill(-pgid, sig) };
}
