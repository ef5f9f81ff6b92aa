import Lean

/-!
# leangym's kernel-side audit of one candidate proof

    lean --run audit.lean CANDIDATE.olean REFERENCE TARGET REF_TARGET

with `LEAN_PATH` holding the reference module's `.olean` and the toolchain's, never the
candidate's: the candidate's file is named by its path (see `rewards/audit.py`).
This program trusts neither the Lean run that elaborated the candidate nor any syntax the
candidate may have declared: it parses no Lean at all, it loads environments.

1. It reads the constants the candidate module declares from its `.olean` file, as data.
2. It re-checks each of them with the kernel (`Environment.replay`) on top of the reference
   module: the trusted header and statement, elaborated by a separate, trusted Lean run.
3. It checks that `TARGET` is a theorem whose type is definitionally equal to `REF_TARGET`'s.
4. It prints the axioms `TARGET` depends on, in the words of `#print axioms`.

Each step prints a line starting with `lg-audit:`; any failure ends the run with status 1.
-/

open Lean

def report (line : String) : IO Unit :=
  IO.println s!"lg-audit: {line}"

/-- The constants a compiled module declares, read from its `.olean` file (named by path, never
looked up on the search path) as data: the module is not imported, so none of its code runs (no
initializers, no environment extensions). -/
def moduleConstants (file : System.FilePath) : IO (Std.HashMap Name ConstantInfo) := do
  let (data, _) ← readModuleData file
  let mut consts := {}
  for c in data.constants do
    consts := consts.insert c.name c
  return consts

def axiomsOf (env : Environment) (target : Name) : Array Name :=
  let ((), st) := (CollectAxioms.collect target).run env |>.run {}
  st.axioms

/-- `#print axioms`'s wording, which `rewards/audit.py` parses. -/
def axiomsLine (target : Name) (axioms : Array Name) : String :=
  if axioms.isEmpty then s!"'{target}' does not depend on any axioms"
  else s!"'{target}' depends on axioms: [{", ".intercalate (axioms.toList.map toString)}]"

def audit (candidate : System.FilePath) (reference target refTarget : Name) : IO (Array Name) := do
  initSearchPath (← findSysroot)
  let consts ← moduleConstants candidate
  let base ← importModules #[{ module := reference }] {}
  let env ← base.replay consts  -- throws on the first constant the kernel rejects
  report s!"replay ok ({consts.size} constants)"
  let some (.thmInfo thm) := env.find? target
    | throw <| .userError s!"missing: the candidate declares no theorem {target}"
  let some ref := env.find? refTarget
    | throw <| .userError s!"missing: the reference declares no {refTarget}"
  unless Kernel.isDefEq env {} thm.type ref.type matches .ok true do
    throw <| .userError s!"type mismatch: {target} does not have the reference statement's type"
  report "type ok"
  return axiomsOf env target

def main (args : List String) : IO UInt32 := do
  let [candidate, reference, target, refTarget] := args
    | report "usage: audit CANDIDATE.olean REFERENCE TARGET REF_TARGET"; return 2
  try
    let axioms ← audit candidate reference.toName target.toName refTarget.toName
    IO.println (axiomsLine target.toName axioms)
    return 0
  catch e =>
    report s!"failed: {e}"
    return 1
