/-- The sum of the first `n` odd numbers is `n²`. -/
theorem sum_odd (n : Nat) : ((List.range n).map (fun i => 2 * i + 1)).sum = n * n := by
  induction n with
  | zero => rfl
  | succ k ih =>
    simp [List.range_succ, ih]
    grind
