//! The shared memory model: regions that one process creates and others
//! attach, and the rings inside them.

pub mod layout;
mod mapped;
pub mod mpmc;
pub mod region;
pub mod share;
pub mod spsc;
pub mod wait;
pub mod watch;

pub use layout::Geometry;
pub use mapped::Mapped;
pub(crate) use mapped::Owner;
pub use region::Region;
