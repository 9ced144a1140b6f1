//! Custom resource types (group `rollgate.dev`, version `v1alpha1`) and CRD generation.
