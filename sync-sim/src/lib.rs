//! Loopback simulators of the external systems, for tests, benches and the
//! demo. They are written from the public references (not from the adapters'
//! types), so a test can catch a misreading on either side.

pub mod booking;
pub mod yclients;
