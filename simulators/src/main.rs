//! `geoward-sim`: the simulator's command line (see the crate docs).

fn main() {
    println!("geoward-sim: not yet");
}
