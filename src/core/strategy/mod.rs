//! Canary and blue-green rollout state machines.
