//! `scripts/release-presets` runs this after `presets-wasm/build.sh`: copies every preset's new
//! version into `presets-wasm/released/` and adds its `released.lock` entry (see
//! `mediahost_e2e::released`). Exits 1, changing nothing, when it would overwrite a release.

fn main() {
    match mediahost_e2e::released::release(&mediahost_e2e::repo_root()) {
        Ok(report) => {
            for line in report {
                println!("{line}");
            }
        }
        Err(refusal) => {
            eprintln!("release-presets: refused:\n{refusal}");
            std::process::exit(1);
        }
    }
}
