/-
Starts the compiled session program fast: `lean --run` on a file importing this module.

`lean --run FILE` imports FILE's imports on a worker thread whose every file access waits for
Node's main thread (6.7–10.6 s for `import Lean.Elab.Frontend` in the embedded Lean), then
elaborates FILE. This module imports almost nothing (`prelude`: `Init.System.ST` only), so that
costs little; its `main` then imports the compiled session program (`LeanGymSession`, built from
`Session.lean` by `leangym setup`) with `Lean.importModules` on Lean's main thread (~0.6 s), and
runs that program's `main` through `Lean.Environment.evalConst`.

Those two functions live in the `Lean` package, which this module does not import: they are
declared below under their own names, so the interpreter calls the compiled library functions,
with types that have their run-time layout (an `Import` is a name and three flags; `Options`,
an empty list, is the number 0; an empty `NameMap`, a leaf, is the number 1; `OLeanLevel` is
an enumeration). Those layouts belong to this pinned Lean: `leangym setup` self-tests the
result and falls back to elaborating `Session.lean` when it does not answer right.
-/
module
prelude
public meta import Init.System.ST
set_option autoImplicit false
set_option compiler.extract_closed false
public meta section

namespace LeanGymBoot

/-- `Lean.Import`'s layout: the module's name, then three flags. -/
structure Imp where
  module : Lean.Name
  importAll : Bool
  isExported : Bool
  isMeta : Bool

/-- `Lean.OLeanLevel`'s layout. -/
inductive Level where
  | exported | server | priv

/-- A Lean object this module passes along without looking inside. -/
@[expose] def Obj : Type := Nat

instance : Inhabited Obj := ⟨(0 : Nat)⟩

end LeanGymBoot

open LeanGymBoot

/-- `lean --run` wants `main : IO Unit`; this module imports no `IO`, so it names its own, of the same layout. -/
@[expose] def IO (α : Type) : Type := EST Obj Unit α

instance {α : Type} [Inhabited α] : Inhabited (IO α) := ⟨fun w => .ok default w⟩

@[extern "l_Lean_importModules"]
opaque Lean.importModules (imports : Array Imp) (opts : Obj) (trustLevel : UInt32)
  (plugins : Array Obj) (leakEnv loadExts : Bool) (level : Level) (artifacts : Obj) : IO Obj

@[extern "l_Lean_Environment_evalConst"]
opaque Lean.Environment.evalConst (α : Type) (env : Obj) (opts : @& Obj) (constName : Lean.Name)
  (checkMeta : Bool) : Except String α

@[extern "l_IO_throwServerError___redArg"]
opaque IO.throwServerError._redArg (msg : String) : IO Unit

/-- Import the session program and run its `main` with this program's arguments. -/
def main (args : List String) : IO Unit := fun w =>
  match Lean.importModules #[⟨`LeanGymSession, false, true, true⟩] (0 : Nat) 0 #[] false false .priv (1 : Nat) w with
  | .error e w => .error e w
  | .ok env w =>
    match Lean.Environment.evalConst (List String → IO Unit) env (0 : Nat) `main true with
    | .ok run => run args w
    | .error msg => IO.throwServerError._redArg msg w

end
