//! Segment validation tests (files on disk, single process).
