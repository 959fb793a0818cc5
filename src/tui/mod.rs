//! The terminal: raw mode and the alternate screen in, and always back out (on quit, on error, on
//! panic through a chained hook, on SIGTERM/SIGHUP); crossterm events and signals turned into
//! `Input` (which app turns into its `Msg`). The only room that uses crossterm.

use std::io::{self, Stdout};
use std::sync::Once;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, KeyModifiers,
    MouseButton, MouseEventKind,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{KeyChord, KeyCode};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// The terminal in TUI mode; dropping it restores the terminal.
pub struct Tui {
    pub terminal: Term,
}

impl Tui {
    pub fn enter() -> anyhow::Result<Tui> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = RestoreOnError;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        std::mem::forget(guard);
        Ok(Tui { terminal })
    }

    pub fn size(&self) -> (u16, u16) {
        crossterm::terminal::size().unwrap_or((80, 24))
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

struct RestoreOnError;
impl Drop for RestoreOnError {
    fn drop(&mut self) {
        restore();
    }
}

/// The terminal's columns and rows, where standard output is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size().ok()
}

/// Back into TUI mode after `restore` (when a pager handed the terminal back).
pub fn reenter() -> anyhow::Result<()> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        cursor::Hide
    )?;
    Ok(())
}

/// Put text on the terminal's clipboard with OSC 52 (works over SSH in most terminals).
pub fn copy_to_clipboard(text: &str) {
    use base64::Engine;
    use std::io::Write;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = io::stdout();
    let _ = write!(out, "\x1b]52;c;{b64}\x07");
    let _ = out.flush();
}

/// Leave the alternate screen and raw mode. Safe to call more than once, and when the terminal is
/// already gone (errors are ignored: there is nobody left to tell).
pub fn restore() {
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic that `error::contain` catches is reported by its caller; the screen stays.
            if !crate::error::panic_contained() {
                restore();
            }
            previous(info);
        }));
    });
}

/// What the terminal and the stop signals say, in our own words (keys in our key notation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyChord),
    /// A left click at (column, row).
    Click(u16, u16),
    /// Mouse wheel: negative is up.
    Scroll(i8),
    /// Horizontal wheel or touchpad swipe: negative is left.
    ScrollX(i8),
    Resize(u16, u16),
    /// Input ended or a stop signal came: why.
    Terminate(&'static str),
}

/// Feed terminal events and stop signals into the channel, as whatever message type the receiver
/// makes of an `Input`, until input ends.
pub fn spawn_events<M: From<Input> + Send + 'static>(
    tx: UnboundedSender<M>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        let mut events = EventStream::new();
        loop {
            let input = tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) => match to_input(ev) {
                        Some(m) => m,
                        None => continue,
                    },
                    Some(Err(_)) | None => Input::Terminate("terminal input closed"),
                },
                _ = term.recv() => Input::Terminate("SIGTERM"),
                _ = hup.recv() => Input::Terminate("SIGHUP"),
                _ = int.recv() => Input::Terminate("SIGINT"),
            };
            let last = matches!(input, Input::Terminate(_));
            if tx.send(M::from(input)).is_err() || last {
                return;
            }
        }
    }))
}

fn to_input(ev: Event) -> Option<Input> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            let code = match k.code {
                crossterm::event::KeyCode::Char(c) => KeyCode::Char(c),
                crossterm::event::KeyCode::Enter => KeyCode::Enter,
                crossterm::event::KeyCode::Esc => KeyCode::Esc,
                crossterm::event::KeyCode::Tab => KeyCode::Tab,
                crossterm::event::KeyCode::BackTab => KeyCode::BackTab,
                crossterm::event::KeyCode::Backspace => KeyCode::Backspace,
                crossterm::event::KeyCode::Delete => KeyCode::Delete,
                crossterm::event::KeyCode::Insert => KeyCode::Insert,
                crossterm::event::KeyCode::Up => KeyCode::Up,
                crossterm::event::KeyCode::Down => KeyCode::Down,
                crossterm::event::KeyCode::Left => KeyCode::Left,
                crossterm::event::KeyCode::Right => KeyCode::Right,
                crossterm::event::KeyCode::Home => KeyCode::Home,
                crossterm::event::KeyCode::End => KeyCode::End,
                crossterm::event::KeyCode::PageUp => KeyCode::PageUp,
                crossterm::event::KeyCode::PageDown => KeyCode::PageDown,
                crossterm::event::KeyCode::F(n) => KeyCode::F(n),
                _ => return None,
            };
            let chord = KeyChord {
                code,
                ctrl: k.modifiers.contains(KeyModifiers::CONTROL),
                alt: k.modifiers.contains(KeyModifiers::ALT),
                shift: k.modifiers.contains(KeyModifiers::SHIFT),
            };
            Some(Input::Key(chord.normalized()))
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Input::Click(m.column, m.row)),
            MouseEventKind::ScrollUp => Some(Input::Scroll(-1)),
            MouseEventKind::ScrollDown => Some(Input::Scroll(1)),
            MouseEventKind::ScrollLeft => Some(Input::ScrollX(-1)),
            MouseEventKind::ScrollRight => Some(Input::ScrollX(1)),
            _ => None,
        },
        Event::Resize(w, h) => Some(Input::Resize(w, h)),
        _ => None,
    }
}
