use super::*;

#[test]
fn op_classes_are_listed_in_declaration_order() {
    // The evaluator indexes per-class tables by `class as usize`.
    for (i, c) in OpClass::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i, "{c:?}");
    }
}
