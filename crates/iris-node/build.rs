//! Link settings for the Node-API addon.

fn main() {
    napi_build::setup();
}
