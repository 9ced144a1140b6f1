//! The Git side of promotion: fetch, comment-preserving edit, commit, push, revert.
