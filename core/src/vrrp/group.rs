//! Sync groups: member instances change state together, as keepalived's
//! `vrrp_sync_group` does.
//!
//! When a member becomes master, the others become master; when one falls
//! back to backup, the others do; when one enters FAULT, the group is in
//! FAULT until that member recovers. Moves made by the group itself carry
//! [`Reason::Sync`] and are not propagated again, so a group never loops.

use super::instance::{Action, Instance, Input, Reason, State};
use crate::time::Instant;

/// Members of one group.
pub const MAX_GROUP: usize = 16;

/// A sync group over the host's instance table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SyncGroup {
    members: heapless::Vec<u16, MAX_GROUP>,
}

impl SyncGroup {
    /// A group of the instances at these indexes of the host's table.
    /// Returns `None` when there are more than [`MAX_GROUP`].
    pub fn new(members: &[u16]) -> Option<Self> {
        Some(SyncGroup { members: heapless::Vec::from_slice(members).ok()? })
    }

    /// The member indexes.
    pub fn members(&self) -> &[u16] {
        &self.members
    }

    /// Whether instance `index` is a member.
    pub fn contains(&self, index: usize) -> bool {
        self.members.iter().any(|&m| usize::from(m) == index)
    }

    /// The state the other members must follow after `action` of a member,
    /// if any. Only transitions not made by the group itself count.
    pub fn follow(action: &Action) -> Option<State> {
        match *action {
            Action::Transition { to, reason, .. } if reason != Reason::Sync => match to {
                State::Master | State::Backup | State::Fault => Some(to),
                State::Initialize => None,
            },
            _ => None,
        }
    }

    /// Moves every member but `from` to `target`, and hands each action
    /// they return to `emit` with the member's index.
    ///
    /// Call it for each action of member `from` for which [`Self::follow`]
    /// returns a state.
    pub fn propagate(
        &self,
        now: Instant,
        instances: &mut [Instance],
        from: usize,
        target: State,
        mut emit: impl FnMut(usize, Action),
    ) {
        for &m in &self.members {
            let i = usize::from(m);
            if i == from {
                continue;
            }
            if let Some(inst) = instances.get_mut(i) {
                for a in inst.handle(now, Input::Sync(target)) {
                    emit(i, a);
                }
            }
        }
    }
}
