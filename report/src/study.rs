//! The study's published figures: TensorFlow frozen graphs, timed with
//! TensorFlow's label_image on the author's 2017 machine (not stated).
//! Copied from ../shared/reference/seed-models.md; the baseline beside ours.

pub struct StudyModel {
    pub name: &'static str,
    /// Test accuracy, as a fraction.
    pub accuracy: f64,
    /// As published (rounded).
    pub params: &'static str,
    /// "Ops" as published: about two per multiply-accumulate.
    pub ops: &'static str,
    pub bytes: usize,
    pub latency_ms: f64,
}

pub const STUDY: [StudyModel; 4] = [
    StudyModel {
        name: "tuto",
        accuracy: 0.872,
        params: "1.07M",
        ops: "37.75M",
        bytes: 4_278_750,
        latency_ms: 44.0,
    },
    StudyModel {
        name: "alex4",
        accuracy: 0.875,
        params: "1.49M",
        ops: "35.20M",
        bytes: 5_979_938,
        latency_ms: 50.0,
    },
    StudyModel {
        name: "nin2",
        accuracy: 0.898,
        params: "0.97M",
        ops: "251.36M",
        bytes: 3_881_548,
        latency_ms: 90.0,
    },
    StudyModel {
        name: "squeeze1",
        accuracy: 0.878,
        params: "0.15M",
        ops: "22.84M",
        bytes: 602_892,
        latency_ms: 27.0,
    },
];
