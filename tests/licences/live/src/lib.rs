//! Empty: only its dependency is read (tests/licences/run.sh).
