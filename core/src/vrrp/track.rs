//! Tracked objects: interfaces, scripts, files and policies whose status
//! moves an instance's effective priority, or puts it in FAULT.
//!
//! The rules are keepalived's:
//! - up/down objects (interfaces, scripts, policies' check verdicts) with a
//!   positive weight add it while up; with a negative weight they subtract it
//!   while down; `reverse` swaps what counts as up;
//! - value objects (files, priority policies) contribute `value * weight`;
//! - a weight of 0 means FAULT when the object is down (or its value non-zero);
//! - the effective priority is clamped to 1..=254. The owner (255) is not
//!   moved by weights; only FAULT takes it out.

use super::config::MAX_TRACKED;

/// The host's handle for a tracked object, chosen by the host (an index
/// into its own table, usually).
pub type TrackId = u16;

/// The current status of a tracked object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TrackStatus {
    /// Up: the interface is running, the script exited 0, the check passed.
    Up,
    /// Down.
    Down,
    /// A number: a track_file's content, a priority policy's delta.
    Value(i32),
    /// Fault regardless of weight: a priority policy's FAULT verdict.
    Fault,
}

/// One tracked object as an instance sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tracked {
    /// The host's handle.
    pub id: TrackId,
    /// keepalived's weight, -254..=254.
    pub weight: i16,
    /// keepalived's `reverse`: count down as up and the value negated.
    pub reverse: bool,
    /// The last status reported.
    pub status: TrackStatus,
}

impl Tracked {
    /// A tracked object that starts in `status`.
    pub fn new(id: TrackId, weight: i16, reverse: bool, status: TrackStatus) -> Self {
        Tracked { id, weight, reverse, status }
    }

    /// This object's contribution: `Err(())` for FAULT, else a priority delta.
    fn contribution(&self) -> Result<i32, ()> {
        let w = i32::from(self.weight);
        match self.status {
            TrackStatus::Fault => Err(()),
            TrackStatus::Up | TrackStatus::Down => {
                let up = (self.status == TrackStatus::Up) != self.reverse;
                match (w, up) {
                    (0, false) => Err(()),
                    (w, true) if w > 0 => Ok(w),
                    (w, false) if w < 0 => Ok(w),
                    _ => Ok(0),
                }
            }
            TrackStatus::Value(v) => {
                let v = if self.reverse { v.saturating_neg() } else { v };
                if w == 0 {
                    if v != 0 { Err(()) } else { Ok(0) }
                } else {
                    Ok(v.saturating_mul(w))
                }
            }
        }
    }
}

/// The set of objects one instance tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrackSet {
    items: heapless::Vec<Tracked, MAX_TRACKED>,
}

/// What a [`TrackSet`] says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Run with this effective priority.
    Priority(u8),
    /// Go to FAULT.
    Fault,
}

impl TrackSet {
    /// An empty set.
    pub const fn new() -> Self {
        TrackSet { items: heapless::Vec::new() }
    }

    /// Adds an object. Returns it back when the set is full.
    pub fn push(&mut self, t: Tracked) -> Result<(), Tracked> {
        self.items.push(t)
    }

    /// Sets the status of `id`. Returns false when `id` is not tracked.
    pub fn set(&mut self, id: TrackId, status: TrackStatus) -> bool {
        let mut found = false;
        for t in self.items.iter_mut().filter(|t| t.id == id) {
            t.status = status;
            found = true;
        }
        found
    }

    /// The tracked objects.
    pub fn iter(&self) -> impl Iterator<Item = &Tracked> {
        self.items.iter()
    }

    /// The verdict for an instance configured with `base` priority.
    pub fn verdict(&self, base: u8) -> Verdict {
        let mut delta: i32 = 0;
        for t in &self.items {
            match t.contribution() {
                Ok(d) => delta = delta.saturating_add(d),
                Err(()) => return Verdict::Fault,
            }
        }
        if base == 255 {
            return Verdict::Priority(255);
        }
        let p = i32::from(base).saturating_add(delta).clamp(1, 254);
        Verdict::Priority(p as u8)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn set(items: &[Tracked]) -> TrackSet {
        let mut s = TrackSet::new();
        for t in items {
            s.push(*t).unwrap();
        }
        s
    }

    #[test]
    fn test_weights() {
        // keepalived's track_script with weight 10: +10 while the script succeeds.
        let mut s = set(&[Tracked::new(1, 10, false, TrackStatus::Up)]);
        assert_eq!(s.verdict(100), Verdict::Priority(110));
        s.set(1, TrackStatus::Down);
        assert_eq!(s.verdict(100), Verdict::Priority(100));
        // Negative weight: subtract while down.
        let mut s = set(&[Tracked::new(2, -30, false, TrackStatus::Up)]);
        assert_eq!(s.verdict(100), Verdict::Priority(100));
        s.set(2, TrackStatus::Down);
        assert_eq!(s.verdict(100), Verdict::Priority(70));
        // reverse swaps up and down.
        let s = set(&[Tracked::new(3, -30, true, TrackStatus::Up)]);
        assert_eq!(s.verdict(100), Verdict::Priority(70));
    }

    #[test]
    fn test_weight_zero_is_fault() {
        let mut s = set(&[Tracked::new(1, 0, false, TrackStatus::Up)]);
        assert_eq!(s.verdict(100), Verdict::Priority(100));
        s.set(1, TrackStatus::Down);
        assert_eq!(s.verdict(100), Verdict::Fault);
        assert_eq!(s.verdict(255), Verdict::Fault);
        let s = set(&[Tracked::new(1, 5, false, TrackStatus::Fault)]);
        assert_eq!(s.verdict(100), Verdict::Fault);
    }

    #[test]
    fn test_clamp_and_owner() {
        let s = set(&[
            Tracked::new(1, 200, false, TrackStatus::Up),
            Tracked::new(2, 100, false, TrackStatus::Up),
        ]);
        assert_eq!(s.verdict(100), Verdict::Priority(254));
        let s = set(&[Tracked::new(1, -254, false, TrackStatus::Down)]);
        assert_eq!(s.verdict(100), Verdict::Priority(1));
        // The owner is not moved by weights.
        assert_eq!(s.verdict(255), Verdict::Priority(255));
    }

    #[test]
    fn test_values() {
        let mut s = set(&[Tracked::new(7, 2, false, TrackStatus::Value(-15))]);
        assert_eq!(s.verdict(100), Verdict::Priority(70));
        s.set(7, TrackStatus::Value(i32::MIN));
        assert_eq!(s.verdict(100), Verdict::Priority(1));
        let mut s = set(&[Tracked::new(7, 0, false, TrackStatus::Value(0))]);
        assert_eq!(s.verdict(100), Verdict::Priority(100));
        s.set(7, TrackStatus::Value(3));
        assert_eq!(s.verdict(100), Verdict::Fault);
        assert!(!s.set(99, TrackStatus::Up));
    }
}
