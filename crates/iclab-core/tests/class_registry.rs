//! The function-class registry: every name in `CLASS_NAMES` has one set of defaults, read alike by
//! TOML (serde), `iclab classes` (the catalogue) and `iclab curves` (`default_of`).

use iclab_core::{ClassSpec, CLASS_NAMES};

#[test]
fn every_class_name_has_defaults_that_toml_reads_the_same_way() {
    let catalogue = ClassSpec::catalogue();
    assert_eq!(catalogue.len(), CLASS_NAMES.len());
    for (name, (spec, about)) in CLASS_NAMES.iter().zip(&catalogue) {
        let d = ClassSpec::default_of(name).unwrap();
        assert_eq!(&d, spec, "{name}");
        assert!(!about.is_empty());
        // The serialised default names its class and reads back to itself.
        let text = toml::to_string(&d).unwrap();
        assert!(text.contains(&format!("class = \"{name}\"")), "{name}: {text}");
        let back: ClassSpec = toml::from_str(&text).unwrap();
        assert_eq!(back, d, "{name}");
        // A bare `class = NAME` table gets the same defaults (except the mixture, which has none).
        if *name != "mixture" {
            let bare: ClassSpec = toml::from_str(&format!("class = \"{name}\"")).unwrap();
            assert_eq!(bare, d, "{name}");
        }
    }
    assert!(ClassSpec::default_of("spars").is_none());
}

#[test]
fn the_studys_defaults() {
    assert_eq!(
        ClassSpec::default_of("sparse").unwrap(),
        ClassSpec::Sparse {
            nnz: 2,
            normalize: false
        }
    );
    assert_eq!(
        ClassSpec::default_of("noisy_linear").unwrap(),
        ClassSpec::NoisyLinear { noise_std: 1.0 }
    );
    match ClassSpec::default_of("convex").unwrap() {
        ClassSpec::Convex { alpha, first, second } => {
            assert_eq!(alpha, 0.5);
            assert_eq!(*first, ClassSpec::Dense { normalize: true });
            assert!(matches!(*second, ClassSpec::Sinusoid { .. }));
        }
        other => panic!("{other:?}"),
    }
}
