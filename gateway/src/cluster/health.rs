//! Whether the store is in use (shared) or being routed around (fallback). A pure state
//! machine: the first failure flips to fallback and reports it (the caller logs once and
//! starts the probe), further failures report nothing, and only a successful probe flips
//! back. Starts in fallback: nothing waits on a store that has not answered yet.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
pub struct Health {
    fallback: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            fallback: AtomicBool::new(true),
        }
    }
}

impl Health {
    pub fn is_shared(&self) -> bool {
        !self.fallback.load(Ordering::Acquire)
    }

    /// A store call failed; true when this call is the one that left shared mode.
    pub fn failed(&self) -> bool {
        !self.fallback.swap(true, Ordering::AcqRel)
    }

    /// The probe reached the store; true when this call is the one that restored it.
    pub fn recovered(&self) -> bool {
        self.fallback.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_report_once() {
        let h = Health::default();
        assert!(!h.is_shared());
        assert!(h.recovered());
        assert!(!h.recovered());
        assert!(h.is_shared());
        assert!(h.failed());
        assert!(!h.failed(), "a second failure is not logged again");
        assert!(!h.is_shared());
        assert!(h.recovered() && h.is_shared());
    }
}
