//! Why a schedule was rejected. The message names the window (by index) and the offending
//! value (clipped); [`ScheduleError::code`] is a stable code for API responses.

/// A rejected schedule; `code()` is stable API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule{}: {problem}", at(*.window))]
    Invalid {
        window: Option<usize>,
        problem: String,
    },
    #[error(
        "window {window}: unknown day {value:?}: expected mon, tue, wed, thu, fri, sat or sun"
    )]
    UnknownDay { window: usize, value: String },
    #[error("window {window}: invalid {field} time {value:?}: expected HH:MM (24-hour{})",
        if *.field == "end" { ", or 24:00" } else { "" })]
    InvalidTime {
        window: usize,
        field: &'static str,
        value: String,
    },
    #[error("window {window}: empty window: {reason}")]
    EmptyWindow { window: usize, reason: String },
    #[error("too many windows: {count}, the maximum is {max}")]
    TooManyWindows { count: usize, max: usize },
}

fn at(window: Option<usize>) -> String {
    window
        .map(|w| format!(" at window {w}"))
        .unwrap_or_default()
}

impl ScheduleError {
    /// A stable snake_case code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::Invalid { .. } => "invalid_schedule",
            ScheduleError::UnknownDay { .. } => "unknown_day",
            ScheduleError::InvalidTime { .. } => "invalid_time",
            ScheduleError::EmptyWindow { .. } => "empty_window",
            ScheduleError::TooManyWindows { .. } => "too_many_windows",
        }
    }
}
