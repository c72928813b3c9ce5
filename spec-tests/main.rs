//! berth's conformance suite: drives the runtime's runc-compatible CLI and
//! checks each behaviour of the OCI runtime spec from inside the container
//! (what the process sees) and from outside (state JSON, exit codes, no
//! residue on the host).
//!
//! `cargo test --test spec-tests` tests berth; `BERTH_BIN=/usr/sbin/runc cargo
//! test --test spec-tests` runs the same suite against runc, which is how
//! every test was validated. Tests of behaviour runc lacks print `SKIP` with
//! the reason when the runtime is not berth. Must run as root.

#[macro_use]
mod harness;

mod apparmor;
mod capabilities;
mod cgroups;
mod checkpoint;
mod clients;
mod commands;
mod devices;
mod errors;
mod exec;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod netdevices;
mod process;
mod process_fields;
mod process_model;
mod rootless;
mod seccomp;
mod selinux;
mod username;
