//! Every scenario of every compiled-in system completes with the right answer at small
//! sizes (the benches run the sizes).

use std::path::Path;

use iris_benches::mesh::{MeshPair, TcpPair};
use iris_benches::{SYSTEMS, memory, skynet_sum, system};

const NODE: &str = env!("CARGO_BIN_EXE_iris-bench-node");

#[test]
fn scenarios_complete_at_small_sizes() {
    for name in SYSTEMS {
        let s = system(name).unwrap();
        s.spawn_idle(100);
        s.fanout(1000);
        s.sink(1000);
        s.pingpong(1000);
        let (sum, _) = s.skynet(3);
        assert_eq!(sum, skynet_sum(3), "{name}");
        // A second run on the same runtime: nothing left over from the first.
        assert_eq!(s.skynet(2).0, skynet_sum(2), "{name}");
    }
}

#[test]
fn idle_memory_is_measured_in_a_child() {
    let per_actor = memory::per_actor_in_child(Path::new(NODE), "iris", 10_000).unwrap();
    assert!(per_actor > 0.0 && per_actor < 1_000_000.0, "{per_actor}");
    assert!(memory::per_actor_in_child(Path::new(NODE), "nonesuch", 10).is_err());
}

#[test]
fn mesh_two_processes_small() {
    let pair = MeshPair::start(Path::new(NODE)).unwrap();
    pair.sink(1000);
    pair.pingpong(100);
    pair.sink(10);
    let tcp = TcpPair::start(Path::new(NODE)).unwrap();
    tcp.sink(1000);
    tcp.pingpong(100);
    tcp.sink(10);
}
