//! Statistical canary-vs-baseline judges.
