//! A container's resource usage ([`Container::stats`](crate::Container::stats), the data of a
//! `stats` [`Event`](crate::Event)), in the JSON shape of runc's `events` (`types.Stats`),
//! which containerd's shim and other tools parse.

pub use crate::cgroups::stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
};
