//! The zoo reproduces the seeds' published sizes and costs.

use models::zoo;

fn within(actual: usize, expected: f64, tolerance: f64) -> bool {
    ((actual as f64 - expected) / expected).abs() <= tolerance
}

#[test]
fn squeeze1_has_exactly_the_studys_parameters() {
    let cost = models::cost(&zoo::arch("squeeze1").unwrap().graph()).unwrap();
    assert_eq!(cost.params, 146_570);
    // The seed's figure: about 11.26M multiply-accumulates on 24x24.
    assert!(within(cost.macs, 11.26e6, 0.005), "{}", cost.macs);
}

#[test]
fn study_models_match_published_params_and_ops_within_3_percent() {
    let published = [
        ("tuto", 1.07e6, 37.75e6),
        ("alex4", 1.49e6, 35.20e6),
        ("nin2", 0.97e6, 251.36e6),
        ("squeeze1", 0.15e6, 22.84e6),
    ];
    for (name, params, ops) in published {
        let cost = models::cost(&zoo::arch(name).unwrap().graph()).unwrap();
        assert!(
            within(cost.params, params, 0.03),
            "{name}: {} params vs {params}",
            cost.params
        );
        assert!(
            within(cost.ops, ops, 0.03),
            "{name}: {} ops vs {ops}",
            cost.ops
        );
    }
}

#[test]
fn other_seeds_match_their_parameter_counts() {
    let count = |name: &str| {
        models::cost(&zoo::arch(name).unwrap().graph())
            .unwrap()
            .params
    };
    assert!(
        within(count("convnext-tiny"), 0.17e6, 0.05),
        "{}",
        count("convnext-tiny")
    );
    // Keras counts batch-norm running statistics (192 values) as parameters.
    assert_eq!(count("allconv") + 2 * 96, 955_114);
    assert!(
        within(count("resnet9"), 6.57e6, 0.01),
        "{}",
        count("resnet9")
    );
}

#[test]
fn unknown_architecture_is_a_one_line_error_listing_the_zoo() {
    let err = zoo::arch("lenet").err().unwrap().to_string();
    assert!(
        err.contains("lenet") && err.contains("squeeze1") && !err.contains('\n'),
        "{err}"
    );
}

#[test]
fn nets_trained_with_batchnorm_fold_back_to_the_zoo_layers_and_counts() {
    for arch in zoo::ZOO {
        let graph = arch.graph();
        let fold = |g: &models::Graph| {
            let weights = models::weights::seeded(g, 3).unwrap();
            models::fold::fold_batchnorm(g, &weights).unwrap()
        };
        let (plain, _) = fold(&graph);
        for dense in [false, true] {
            let trained = graph.with_batchnorm(dense);
            let study = ["tuto", "alex4", "nin2", "squeeze1"].contains(&arch.name);
            assert!(
                !study || trained.nodes.len() > graph.nodes.len(),
                "{}",
                arch.name
            );
            let (folded, weights) = fold(&trained);
            assert_eq!(folded, plain, "{} (dense {dense})", arch.name);
            models::weights::check(&folded, &weights).unwrap();
            assert_eq!(
                models::cost(&folded).unwrap().params,
                models::cost(&plain).unwrap().params
            );
        }
    }
    let squeeze1 = zoo::arch("squeeze1").unwrap().graph().with_batchnorm(true);
    let weights = models::weights::seeded(&squeeze1, 3).unwrap();
    let (folded, _) = models::fold::fold_batchnorm(&squeeze1, &weights).unwrap();
    assert_eq!(models::cost(&folded).unwrap().params, 146_570);
}
