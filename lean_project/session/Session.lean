/-
leangym's long-lived Lean session: a small program Lean runs with `lean --run Session.lean`.

It speaks a subset of the Lean REPL's protocol (leanprover-community/repl), so the same
client, pool and runtime serve the embedded Lean and a native REPL:

* requests come on stdin (a session) or from a file named on the command line (a batch);
* a request is one JSON object on one line, followed by a blank line;
* `{"cmd": text}` elaborates `text` from scratch: its leading `import`s are loaded (each set
  of imports once per session) and the rest is elaborated on top of them;
* `{"cmd": text, "env": n}` elaborates `text` on top of the state answer `n` left, which is
  not changed: every command starts from a value, so nothing one command declares (a failed
  theorem, an instance, an `exact?` target) is visible to another unless it names that state;
* the answer is `{"env": m, "messages": [...]}` followed by a blank line, each message
  `{"severity", "pos", "endPos", "data", "kind"}` as the REPL writes it; a request this
  program does not serve is answered `{"message": why}`;
* a request's `"id"` comes back in its answer (the client checks that an answer is the one it
  waits for), and `"export": true` adds `"constants"`: every declaration the command added,
  as data (`Export` below), for a trusted process to check with the kernel;
* `{"replay": constants, "env": n, "target": [..], "reference": [..], "native": b}` is that
  check (`replay` below): it elaborates nothing, it adds the constants through the kernel on
  top of state `n` (a trusted reference: the header and the statement) and answers
  `{"replay": "ok", "axioms": [...]}` or `{"replay": "rejected", "reason": .., "why": ..}`.

A process that elaborates submitted text is untrusted (the text can run code while Lean
elaborates it); a process that is only ever sent trusted text and `replay` requests is the
judge. Both run this program; the client decides which process gets which request.

The embedded Lean runs this file as a compiled module (`leangym setup` compiles it once to an
`.olean`; `Boot.lean` imports it and runs its `main`), or, where that fails its self-test, by
elaborating it on every start (`lean --run Session.lean`). Either way its code runs in Lean's
interpreter, which cannot call library functions through their reduced-arity variants or the
private helpers of specialised ones, so the code is deliberately plain: explicit recursion
over arrays and lists (no `for`, `map`, `foldl`, `Std.HashMap`: the tables below are our
own), no default or auto-bound arguments of library functions (`InputContext.mk'` rather
than `mkInputContext`), no `m!` strings, and no polymorphic functions of our own (see `Key`).
-/
module
public meta import Lean.Elab.Frontend
public meta import Lean.Util.CollectAxioms
set_option compiler.extract_closed false  -- closed terms live apart from their IR in an .olean: keep them inline
open Lean Elab
public meta section  -- meta: compiled to run at elaboration time, so `Boot.lean` can run it

/-- What the session remembers: the state after each answered command, and imported environments. -/
structure Store where
  states : Array Command.State
  imported : List (String × Environment)
  home : System.FilePath  -- the working folder, restored before every request

def posJson (p : Position) : Json :=
  Json.mkObj [("line", Json.num p.line), ("column", Json.num p.column)]

def severityName : MessageSeverity → String
  | .information => "info"
  | .warning => "warning"
  | .error => "error"

def messageJson (m : Message) : IO Json := do
  let text ← m.data.toString
  let kind := m.data.kind.toString
  let endPos : Json := match m.endPos with
    | some p => posJson p
    | none => Json.null
  return Json.mkObj [
    ("severity", Json.str (severityName m.severity)),
    ("pos", posJson m.pos),
    ("endPos", endPos),
    ("data", Json.str text),
    ("kind", Json.str kind)]

def messagesJson (ms : List Message) (acc : Array Json) : IO (Array Json) := do
  match ms with
  | [] => return acc
  | m :: rest => messagesJson rest (acc.push (← messageJson m))

def inputOf (text : String) : Parser.InputContext :=
  Parser.InputContext.mk' text "<input>" text.toFileMap text.rawEndPos

def importKey : List Import → String
  | [] => ""
  | i :: rest => i.module.toString ++ " " ++ importKey rest

def lookup (key : String) : List (String × Environment) → Option Environment
  | [] => none
  | (k, env) :: rest => if k == key then some env else lookup key rest

/-! ## Export: the declarations a command added, as data

Names, levels and expressions are tables in which an entry refers to earlier entries by
index (shared subterms are written once):

* `names`: `null` (anonymous, index 0), `[prefix, "str"]`, `[prefix, k]`;
* `levels`: `["0"]`, `["s", l]`, `["m", l, l]`, `["i", l, l]`, `["p", name]`;
* `exprs`: `["b", i]`, `["s", l]`, `["c", name, [l..]]`, `["a", f, x]`,
  `["l"|"f", name, type, body, binder]`, `["t", name, type, value, body, nonDep]`,
  `["n", "digits"]`, `["S", text]`, `["p", struct, i, e]` (metadata is dropped);
* `constants`: `{"kind", "name", "params", "type", "value", ...}` for `thm`, `def`,
  `opaque`; other kinds (`axiom`, `inductive`, ...) give only their kind and name.
-/

/-- What the tables index. One key type keeps the functions below monomorphic: the compiler gives
a polymorphic function a reduced-arity copy (`f._redArg`) that the interpreter cannot find in a
compiled module. -/
inductive Key where
  | name (n : Name)
  | level (l : Level)
  | expr (e : Expr)
  deriving BEq, Hashable

/-- A hash table from keys to indices, with nothing from the library's containers. Its arrays live
in `IO.Ref`s and are updated by taking them out (`modify`), so they are never shared while they
change and grow in place: a `{ s with a := s.a.push x }` copies `a` at every entry here. -/
structure Table where
  buckets : IO.Ref (Array (List (Key × Nat)))
  size : IO.Ref Nat

def Table.new : IO Table := do
  let buckets ← IO.mkRef (Array.replicate 1024 [])
  let size ← IO.mkRef 0
  return { buckets, size }

def findIn (k : Key) : List (Key × Nat) → Option Nat
  | [] => none
  | (k', i) :: rest => if k == k' then some i else findIn k rest

def Table.find? (t : Table) (k : Key) : IO (Option Nat) := do
  let buckets ← t.buckets.get
  return findIn k buckets[(hash k).toNat % buckets.size]!

def insertRaw (buckets : Array (List (Key × Nat))) (k : Key) (i : Nat) :
    Array (List (Key × Nat)) :=
  let b := (hash k).toNat % buckets.size
  let chain := buckets[b]!
  (buckets.set! b []).set! b ((k, i) :: chain)

def rehashList (acc : Array (List (Key × Nat))) : List (Key × Nat) → Array (List (Key × Nat))
  | [] => acc
  | (k, i) :: rest => rehashList (insertRaw acc k i) rest

def rehash (old : Array (List (Key × Nat))) (i : Nat) (acc : Array (List (Key × Nat))) :
    Array (List (Key × Nat)) :=
  if h : i < old.size then rehash old (i + 1) (rehashList acc old[i]) else acc
termination_by old.size - i

def Table.insert (t : Table) (k : Key) (i : Nat) : IO Unit := do
  let size ← t.size.modifyGet fun n => (n, n + 1)
  t.buckets.modify fun buckets =>
    let buckets := if size < 2 * buckets.size then buckets
      else rehash buckets 0 (Array.replicate (4 * buckets.size) [])
    insertRaw buckets k i

/-- The tables being written, and the index of each name, level and expression already in them. -/
structure Export where
  names : IO.Ref (Array Json)
  nameIds : Table
  levels : IO.Ref (Array Json)
  levelIds : Table
  exprs : IO.Ref (Array Json)
  exprIds : Table

def Export.new : IO Export := do
  let names ← IO.mkRef #[Json.null]
  let nameIds ← Table.new
  let levels ← IO.mkRef #[]
  let levelIds ← Table.new
  let exprs ← IO.mkRef #[]
  let exprIds ← Table.new
  let x : Export := { names, nameIds, levels, levelIds, exprs, exprIds }
  x.nameIds.insert (.name Name.anonymous) 0
  return x

/-- Append `j` to `entries` and remember it under `key`: its index. -/
def add (entries : IO.Ref (Array Json)) (ids : Table) (key : Key) (j : Json) : IO Nat := do
  -- The size read after the push: read before it, it kept `a` shared while it grew (the compiler
  -- moved the read past the push), and every entry copied the whole table.
  let i ← entries.modifyGet fun a => let a := a.push j; (a.size - 1, a)
  ids.insert key i
  return i

def jnat (n : Nat) : Json := Json.num n

partial def exName (x : Export) (n : Name) : IO Nat := do
  match ← x.nameIds.find? (.name n) with
  | some i => return i
  | none =>
    let j ← match n with
      | .str p str => pure (Json.arr #[jnat (← exName x p), Json.str str])
      | .num p k => pure (Json.arr #[jnat (← exName x p), jnat k])
      | .anonymous => pure Json.null
    add x.names x.nameIds (.name n) j

partial def exLevel (x : Export) (l : Level) : IO Nat := do
  match ← x.levelIds.find? (.level l) with
  | some i => return i
  | none =>
    let j ← match l with
      | .zero => pure (Json.arr #[Json.str "0"])
      | .succ a => pure (Json.arr #[Json.str "s", jnat (← exLevel x a)])
      | .max a b => pure (Json.arr #[Json.str "m", jnat (← exLevel x a), jnat (← exLevel x b)])
      | .imax a b => pure (Json.arr #[Json.str "i", jnat (← exLevel x a), jnat (← exLevel x b)])
      | .param n => pure (Json.arr #[Json.str "p", jnat (← exName x n)])
      | .mvar _ => pure (Json.arr #[Json.str "?"])
    add x.levels x.levelIds (.level l) j

partial def exLevels (x : Export) (ls : List Level) (acc : Array Json) : IO Json := do
  match ls with
  | [] => return Json.arr acc
  | l :: rest => exLevels x rest (acc.push (jnat (← exLevel x l)))

partial def exNames (x : Export) (ns : List Name) (acc : Array Json) : IO Json := do
  match ns with
  | [] => return Json.arr acc
  | n :: rest => exNames x rest (acc.push (jnat (← exName x n)))

def binderCode : BinderInfo → Nat
  | .default => 0
  | .implicit => 1
  | .strictImplicit => 2
  | .instImplicit => 3

def parts : Expr → List Expr
  | .app f a => [f, a]
  | .lam _ t b _ => [t, b]
  | .forallE _ t b _ => [t, b]
  | .letE _ t v b _ => [t, v, b]
  | .proj _ _ a => [a]
  | _ => []

/-- `(parts e).length`, written out: the library's `List.length` is polymorphic, and the interpreter
cannot find its reduced-arity copy (`_redArg`) from a compiled module (likewise `visits`, a `map`). -/
def arity : Expr → Nat
  | .app .. | .lam .. | .forallE .. => 2
  | .letE .. => 3
  | .proj .. => 1
  | _ => 0

/-- The entry of `e`, given the indices of its parts in the order of `parts e` (0 past its arity). -/
def entry (x : Export) (e : Expr) (p0 p1 p2 : Nat) : IO Json := do
  match e with
  | .bvar i => return Json.arr #[Json.str "b", jnat i]
  | .sort l => return Json.arr #[Json.str "s", jnat (← exLevel x l)]
  | .const n ls => return Json.arr #[Json.str "c", jnat (← exName x n), ← exLevels x ls #[]]
  | .app .. => return Json.arr #[Json.str "a", jnat p0, jnat p1]
  | .lam n _ _ bi => return Json.arr #[Json.str "l", jnat (← exName x n), jnat p0, jnat p1, jnat (binderCode bi)]
  | .forallE n _ _ bi => return Json.arr #[Json.str "f", jnat (← exName x n), jnat p0, jnat p1, jnat (binderCode bi)]
  | .letE n _ _ _ nd => return Json.arr #[Json.str "t", jnat (← exName x n), jnat p0, jnat p1, jnat p2, Json.bool nd]
  | .lit (.natVal k) => return Json.arr #[Json.str "n", Json.str (toString k)]
  | .lit (.strVal t) => return Json.arr #[Json.str "S", Json.str t]
  | .proj n i _ => return Json.arr #[Json.str "p", jnat (← exName x n), jnat i, jnat p0]
  | _ => return Json.arr #[Json.str "?"]  -- free or meta variables: never in a declaration

/-- A step of the walk: `visit e` leaves the index of `e` on the stack (writing it and its parts
first if they are new); `build e` writes the entry of `e` from its parts' indices on the stack. -/
inductive Step where
  | visit (e : Expr)
  | build (e : Expr) (arity : Nat)

def popN (stack : Array Nat) : Nat → Array Nat
  | 0 => stack
  | n + 1 => popN stack.pop n

def visits (es : List Expr) (rest : List Step) : List Step :=
  match es with
  | [] => rest
  | e :: more => .visit e :: visits more rest

/-- Run the walk, with lists and an array for stacks: a proof term is deeper than the interpreter's
stack holds (a `grind` proof overflowed a recursive walk). -/
partial def walk (x : Export) (work : List Step) (stack : Array Nat) : IO (Array Nat) := do
  match work with
  | [] => return stack
  | .visit (.mdata _ b) :: rest => walk x (.visit b :: rest) stack
  | .visit e :: rest =>
    match ← x.exprIds.find? (.expr e) with
    | some i => walk x rest (stack.push i)
    | none => walk x (visits (parts e) (.build e (arity e) :: rest)) stack
  | .build e n :: rest =>
    let base := stack.size - n
    let j ← entry x e (stack.getD base 0) (stack.getD (base + 1) 0) (stack.getD (base + 2) 0)
    let i ← add x.exprs x.exprIds (.expr e) j
    walk x rest ((popN stack n).push i)

def exExpr (x : Export) (e : Expr) : IO Nat := do
  return (← walk x [.visit e] #[])[0]!

def hintsJson : ReducibilityHints → Json
  | .opaque => Json.str "o"
  | .abbrev => Json.str "a"
  | .regular h => jnat h.toNat

def safetyJson : DefinitionSafety → Json
  | .safe => Json.str "s"
  | .unsafe => Json.str "u"
  | .partial => Json.str "p"

/-- `xs ++ ys`, by hand (the interpreter lacks the library's tail-recursive append). -/
def appendAll : List (String × Json) → List (String × Json) → List (String × Json)
  | [], ys => ys
  | x :: xs, ys => x :: appendAll xs ys

/-- One constant: its kind, name, universe parameters, type, and what its kind adds. -/
def exHead (x : Export) (kind : String) (v : ConstantVal) : IO (List (String × Json)) := do
  return [("kind", Json.str kind), ("name", jnat (← exName x v.name)), ("params", ← exNames x v.levelParams #[]),
    ("type", jnat (← exExpr x v.type))]

def exBody (x : Export) (value : Expr) (all : List Name) (extra : List (String × Json)) : IO (List (String × Json)) := do
  return ("value", jnat (← exExpr x value)) :: ("all", ← exNames x all #[]) :: extra

def exConstant (x : Export) (c : ConstantInfo) : IO Json := do
  match c with
  | .thmInfo v => return Json.mkObj (appendAll (← exHead x "thm" v.toConstantVal) (← exBody x v.value v.all []))
  | .defnInfo v =>
    let extra := [("hints", hintsJson v.hints), ("safety", safetyJson v.safety)]
    return Json.mkObj (appendAll (← exHead x "def" v.toConstantVal) (← exBody x v.value v.all extra))
  | .opaqueInfo v =>
    let extra := [("unsafe", Json.bool v.isUnsafe)]
    return Json.mkObj (appendAll (← exHead x "opaque" v.toConstantVal) (← exBody x v.value v.all extra))
  | other =>
    let kind := match other with
      | .axiomInfo _ => "axiom"
      | .quotInfo _ => "quot"
      | .inductInfo _ => "inductive"
      | .ctorInfo _ => "constructor"
      | _ => "recursor"
    return Json.mkObj [("kind", Json.str kind), ("name", jnat (← exName x other.name))]

-- The constants of the map's own stage (those added after the imports), by walking its nodes.
mutual
  partial def stageNode (n : PersistentHashMap.Node Name ConstantInfo) (acc : Array ConstantInfo) :
      Array ConstantInfo :=
    match n with
    | .entries es => stageEntries es 0 acc
    | .collision _ vs _ => pushAll vs 0 acc
  partial def stageEntries (es : Array (PersistentHashMap.Entry Name ConstantInfo
      (PersistentHashMap.Node Name ConstantInfo))) (i : Nat) (acc : Array ConstantInfo) : Array ConstantInfo :=
    if i < es.size then
      let acc := match es[i]! with
        | .entry _ v => acc.push v
        | .ref n => stageNode n acc
        | .null => acc
      stageEntries es (i + 1) acc
    else acc
  partial def pushAll (vs : Array ConstantInfo) (i : Nat) (acc : Array ConstantInfo) : Array ConstantInfo :=
    if i < vs.size then pushAll vs (i + 1) (acc.push vs[i]!) else acc
end

partial def exConstants (x : Export) (cs : Array ConstantInfo) (i : Nat) (acc : Array Json) : IO (Array Json) := do
  if i < cs.size then exConstants x cs (i + 1) (acc.push (← exConstant x cs[i]!)) else return acc

def exportEnv (env : Environment) : IO Json := do
  let x ← Export.new
  let cs ← exConstants x (stageNode env.constants.map₂.root #[]) 0 #[]
  return Json.mkObj [("names", Json.arr (← x.names.get)), ("levels", Json.arr (← x.levels.get)),
    ("exprs", Json.arr (← x.exprs.get)), ("constants", Json.arr cs)]

/-! ## Replay: the trusted half

The tables are read back entry by entry (an index must point to an earlier entry), then each
constant is added with the kernel, in the order given (the client sorts them so that every
constant comes after those it uses). Constants the reference already holds (the header's own
declarations) are skipped: the trusted ones stay. Nothing here parses or runs Lean text.
-/

structure Imported where
  names : Array Name
  levels : Array Level
  exprs : Array Expr
  native : Bool  -- a `Lean.reduceBool`/`Lean.reduceNat` occurs (evaluated by the compiler)

abbrev Reader := Except String

def idx (j : Json) (bound : Nat) (what : String) : Reader Nat :=
  match j.getNat? with
  | .ok i => if i < bound then pure i else throw s!"{what} index {i} out of range"
  | .error _ => throw s!"bad {what} index"

def field (a : Array Json) (i : Nat) : Json := a.getD i Json.null

def str (j : Json) : Reader String :=
  match j.getStr? with
  | .ok s => pure s
  | .error e => throw e

def arr (j : Json) : Reader (Array Json) :=
  match j.getArr? with
  | .ok a => pure a
  | .error e => throw e

def readName (im : Imported) (j : Json) : Reader Name := do
  if j.isNull then return Name.anonymous
  let a ← arr j
  let p := im.names[← idx (field a 0) im.names.size "name"]!
  match (field a 1).getStr? with
  | .ok s => return Name.str p s
  | .error _ => match (field a 1).getNat? with
    | .ok k => return Name.num p k
    | .error _ => throw "bad name"

-- The entry `a`'s `i`-th field as a name, level, expression or number. (Top-level functions, not
-- local ones: a local function is compiled to an auxiliary `f._lam_n` the interpreter cannot find.)
def nm (im : Imported) (a : Array Json) (i : Nat) : Reader Name := do
  return im.names[← idx (field a i) im.names.size "name"]!

def lv (im : Imported) (a : Array Json) (i : Nat) : Reader Level := do
  return im.levels[← idx (field a i) im.levels.size "level"]!

def ex (im : Imported) (a : Array Json) (i : Nat) : Reader Expr := do
  return im.exprs[← idx (field a i) im.exprs.size "expr"]!

def nat (a : Array Json) (i : Nat) : Reader Nat :=
  match (field a i).getNat? with
  | .ok k => pure k
  | .error e => throw e

def readLevel (im : Imported) (j : Json) : Reader Level := do
  let a ← arr j
  match ← str (field a 0) with
  | "0" => return Level.zero
  | "s" => return Level.succ (← lv im a 1)
  | "m" => return Level.max (← lv im a 1) (← lv im a 2)
  | "i" => return Level.imax (← lv im a 1) (← lv im a 2)
  | "p" => return Level.param (← nm im a 1)
  | _ => throw "bad level"

def readBinder : Nat → Reader BinderInfo
  | 0 => pure .default
  | 1 => pure .implicit
  | 2 => pure .strictImplicit
  | 3 => pure .instImplicit
  | _ => throw "bad binder"

def levelList (im : Imported) (js : List Json) (acc : Array Level) : Reader (List Level) :=
  match js with
  | [] => pure acc.toList
  | j :: rest => do levelList im rest (acc.push im.levels[← idx j im.levels.size "level"]!)

def readExpr (im : Imported) (j : Json) : Reader (Expr × Bool) := do
  let a ← arr j
  match ← str (field a 0) with
  | "b" => return (Expr.bvar (← nat a 1), false)
  | "s" => return (Expr.sort (← lv im a 1), false)
  | "c" =>
    let n ← nm im a 1
    let ls ← levelList im (← arr (field a 2)).toList #[]
    return (Expr.const n ls, n == `Lean.reduceBool || n == `Lean.reduceNat)
  | "a" => return (Expr.app (← ex im a 1) (← ex im a 2), false)
  | "l" => return (Expr.lam (← nm im a 1) (← ex im a 2) (← ex im a 3) (← readBinder (← nat a 4)), false)
  | "f" => return (Expr.forallE (← nm im a 1) (← ex im a 2) (← ex im a 3) (← readBinder (← nat a 4)), false)
  | "t" =>
    let nd := match (field a 5).getBool? with
      | .ok b => b
      | .error _ => false
    return (Expr.letE (← nm im a 1) (← ex im a 2) (← ex im a 3) (← ex im a 4) nd, false)
  | "n" => match (← str (field a 1)).toNat? with
    | some k => return (Expr.lit (.natVal k), false)
    | none => throw "bad literal"
  | "S" => return (Expr.lit (.strVal (← str (field a 1))), false)
  | "p" => return (Expr.proj (← nm im a 1) (← nat a 2) (← ex im a 3), false)
  | _ => throw "unsupported expression"

-- Each table is read into an array passed along on its own (so it grows in place).
def readNames (im : Imported) (js : Array Json) (i : Nat) (acc : Array Name) : Reader (Array Name) :=
  if i < js.size then do
    let n ← readName { im with names := acc } js[i]!
    readNames im js (i + 1) (acc.push n)
  else pure acc
termination_by js.size - i

def readLevels (im : Imported) (js : Array Json) (i : Nat) (acc : Array Level) : Reader (Array Level) :=
  if i < js.size then do
    let l ← readLevel { im with levels := acc } js[i]!
    readLevels im js (i + 1) (acc.push l)
  else pure acc
termination_by js.size - i

def readExprs (im : Imported) (js : Array Json) (i : Nat) (acc : Array Expr) (native : Bool) :
    Reader (Array Expr × Bool) :=
  if i < js.size then do
    let (e, isNative) ← readExpr { im with exprs := acc } js[i]!
    readExprs im js (i + 1) (acc.push e) (native || isNative)
  else pure (acc, native)
termination_by js.size - i

def readTables (j : Json) : Reader Imported := do
  let names ← arr (j.getObjValD "names")
  if names.size == 0 || !names[0]!.isNull then throw "the name table must start with the anonymous name"
  let empty : Imported := { names := #[], levels := #[], exprs := #[], native := false }
  let names ← readNames empty names 1 #[Name.anonymous]
  let levels ← readLevels { empty with names } (← arr (j.getObjValD "levels")) 0 #[]
  let (exprs, native) ← readExprs { empty with names, levels } (← arr (j.getObjValD "exprs")) 0 #[] false
  return { names, levels, exprs, native }

def nameList (im : Imported) (js : List Json) (acc : Array Name) : Reader (List Name) :=
  match js with
  | [] => pure acc.toList
  | j :: rest => do nameList im rest (acc.push im.names[← idx j im.names.size "name"]!)

def readHints (j : Json) : Reader ReducibilityHints :=
  match j.getStr? with
  | .ok "o" => pure .opaque
  | .ok "a" => pure .abbrev
  | .ok _ => throw "bad hints"
  | .error _ => match j.getNat? with
    | .ok h => pure (.regular h.toUInt32)
    | .error e => throw e

def readSafety (j : Json) : Reader DefinitionSafety :=
  match j.getStr? with
  | .ok "s" => pure .safe
  | .ok "u" => pure .unsafe
  | .ok "p" => pure .partial
  | _ => throw "bad safety"

/-- A constant as a kernel declaration; `none` for one that is skipped (unsafe: the kernel
refuses every safe declaration that uses it, so skipping it loses nothing that is sound). -/
def readDecl (im : Imported) (c : Json) : Reader (Name × Option Declaration) := do
  let name := im.names[← idx (c.getObjValD "name") im.names.size "name"]!
  let kind ← str (c.getObjValD "kind")
  if kind != "thm" && kind != "def" && kind != "opaque" then
    throw s!"the proof declares an {kind} ({name.toString}): only theorems and definitions are replayed"
  let params ← nameList im (← arr (c.getObjValD "params")).toList #[]
  let type := im.exprs[← idx (c.getObjValD "type") im.exprs.size "expr"]!
  let value := im.exprs[← idx (c.getObjValD "value") im.exprs.size "expr"]!
  let all ← nameList im (← arr (c.getObjValD "all")).toList #[]
  match kind with
  | "thm" => return (name, some (.thmDecl { name, levelParams := params, type, value, all }))
  | "def" =>
    let safety ← readSafety (c.getObjValD "safety")
    if safety == .unsafe then return (name, none)
    let hints ← readHints (c.getObjValD "hints")
    return (name, some (.defnDecl { name, levelParams := params, type, value, hints, safety, all }))
  | _ =>
    let isUnsafe := match (c.getObjValD "unsafe").getBool? with
      | .ok b => b
      | .error _ => true
    if isUnsafe then return (name, none)
    return (name, some (.opaqueDecl { name, levelParams := params, type, value, isUnsafe, all }))

def nameOf (parts : List Json) (acc : Name) : Name :=
  match parts with
  | [] => acc
  | p :: rest => match p.getStr? with
    | .ok s => nameOf rest (Name.str acc s)
    | .error _ => nameOf rest acc

def kernelWhy (e : Kernel.Exception) : IO String := do
  (e.toMessageData {}).toString

/-- The target with the reference statement's type: the kernel checks the proof against *that*. -/
def asReference (d : Declaration) (ref : ConstantInfo) : Declaration :=
  match d with
  | .thmDecl v => .thmDecl { v with type := ref.type, levelParams := ref.levelParams }
  | other => other

structure Outcome where
  env : Kernel.Environment
  found : Name  -- the target's name as declared (private in a `module`)
  failure : Option (String × String)  -- (reason, why)

def stop (env : Kernel.Environment) (target : Name) (reason why : String) : Outcome :=
  { env, found := target, failure := some (reason, why) }

partial def addAll (env : Kernel.Environment) (im : Imported) (cs : Array Json) (i : Nat) (target : Name)
    (ref : ConstantInfo) (found : Option Name) : IO Outcome := do
  if i ≥ cs.size then
    match found with
    | some n => return { env, found := n, failure := none }
    | none => return stop env target "missing_declaration" s!"the proof's run declared no {target.toString}"
  match readDecl im cs[i]! with
  | .error why => return stop env target "unexpected_declaration" why
  | .ok (name, decl) =>
    if (env.find? name).isSome then  -- the reference holds its own (trusted) declaration of that name
      return ← addAll env im cs (i + 1) target ref found
    match decl with
    | none => addAll env im cs (i + 1) target ref found
    | some d =>
      let isTarget := name == target || name == mkPrivateName (Environment.ofKernelEnv env) target
      if isTarget then
        match d with
        | .thmDecl v =>
          match Kernel.isDefEq (Environment.ofKernelEnv env) {} v.type ref.type with
          | .ok true => pure ()
          | .ok false => return stop env target "statement_modified" s!"{target.toString} does not have the reference statement's type"
          | .error e => return stop env target "statement_modified" (← kernelWhy e)
        | _ => return stop env target "missing_declaration" s!"{target.toString} is not a theorem"
      match Kernel.Environment.addDecl env {} (if isTarget then asReference d ref else d) none with
      | .ok env => addAll env im cs (i + 1) target ref (if isTarget then some name else found)
      | .error e => return stop env target "kernel_rejected" (← kernelWhy e)

def namesJson (ns : Array Name) (i : Nat) (acc : Array Json) : Array Json :=
  if h : i < ns.size then namesJson ns (i + 1) (acc.push (Json.str ns[i].toString)) else acc
termination_by ns.size - i

def replayAnswer (reason why : String) : List (String × Json) :=
  [("replay", Json.str "rejected"), ("reason", Json.str reason), ("why", Json.str why)]

/-- Check the exported `constants` on top of the reference environment `env` (see the section doc). -/
def replay (env : Environment) (j : Json) : IO (List (String × Json)) := do
  let parts := match (j.getObjValD "target").getArr? with
    | .ok a => a.toList
    | .error _ => []
  -- Every file is a `module` on the embedded Lean, so a declaration's name may be private.
  let public? (n : Name) : Name := if (env.toKernelEnv.find? n).isSome then n else mkPrivateName env n
  let target := nameOf parts Name.anonymous
  let refParts := match (j.getObjValD "reference").getArr? with
    | .ok a => a.toList
    | .error _ => []
  let some ref := env.toKernelEnv.find? (public? (nameOf refParts Name.anonymous))
    | return replayAnswer "bad_reference" "the reference environment has no such statement"
  let tables := j.getObjValD "replay"
  match readTables tables with
  | .error why => return replayAnswer "malformed_export" why
  | .ok im =>
    let native := match (j.getObjValD "native").getBool? with
      | .ok b => b
      | .error _ => false
    if im.native && !native then
      return replayAnswer "native_code" "the proof evaluates code with the compiler (Lean.reduceBool)"
    let cs := match (tables.getObjValD "constants").getArr? with
      | .ok a => a
      | .error _ => #[]
    let out ← addAll env.toKernelEnv im cs 0 target ref none
    match out.failure with
    | some (reason, why) => return replayAnswer reason why
    | none =>
      let ((), st) := (CollectAxioms.collect out.found).run (Environment.ofKernelEnv out.env) |>.run {}
      return [("replay", Json.str "ok"), ("axioms", Json.arr (namesJson st.axioms 0 #[]))]

/-! ## The session -/

/-- The state a fresh command starts from: its header's imports loaded (once per session). -/
def fresh (store : Store) (input : Parser.InputContext) :
    IO (Command.State × Parser.ModuleParserState × Store) := do
  let (header, parserState, messages) ← Parser.parseHeader input
  let imports := headerToImports header true
  let key := importKey imports.toList
  let (env, messages, store) ← match lookup key store.imported with
    | some env => pure (env, messages, store)
    | none => do
      let (env, messages) ← processHeader header {} messages input 0 #[] false Name.anonymous
      if messages.hasErrors then pure (env, messages, store)
      else pure (env, messages, { store with imported := (key, env) :: store.imported })
  let state := Command.mkState env messages {}
  return ({ state with infoState := { enabled := false } }, parserState, store)

/-- Elaborate `text` from `start` (or from scratch), remember the state it leaves, answer. -/
def command (store : Store) (text : String) (start : Option Command.State) (wantExport : Bool) :
    IO (List (String × Json) × Store) := do
  let input := inputOf text
  let (state, parserState, store) ← match start with
    | some s => pure ({ s with messages := {} }, { : Parser.ModuleParserState }, store)
    | none => fresh store input
  let done ← IO.processCommands input parserState state
  let after := done.commandState
  let messages ← messagesJson after.messages.toList #[]
  let id := store.states.size
  let store := { store with states := store.states.push { after with messages := {} } }
  let fields := [("env", Json.num id), ("messages", Json.arr messages)]
  if wantExport then return (appendAll fields [("constants", ← exportEnv after.env)], store)
  return (fields, store)

def refuse (why : String) : List (String × Json) := [("message", Json.str why)]

def answer (store : Store) (j : Json) : IO (List (String × Json) × Store) := do
  let state? := match (j.getObjValD "env").getNat? with
    | .ok n => if h : n < store.states.size then some (some store.states[n]) else none
    | .error _ => some none
  let wantExport := match (j.getObjValD "export").getBool? with
    | .ok b => b
    | .error _ => false
  match state?, (j.getObjValD "cmd").getStr?, j.getObjVal? "replay" with
  | none, _, _ => return (refuse "Unknown environment.", store)
  | some start, .ok text, _ => command store text start wantExport
  | some (some s), _, .ok _ => return (← replay s.env j, store)
  | _, _, _ => return (refuse "this session serves {\"cmd\": ...} and {\"replay\": ..., \"env\": n} requests", store)

/-- Read lines up to a blank one (or the end of input), joined: one request. -/
partial def readRequest (stdin : IO.FS.Stream) (acc : String) : IO (Option String) := do
  let line ← stdin.getLine
  let blank := line.trimAscii.isEmpty
  let started := !acc.trimAscii.isEmpty
  if line.isEmpty then
    return (if started then some acc else none)
  else if blank && started then
    return some acc
  else
    readRequest stdin (if blank then acc else acc ++ line)

partial def serve (stdin stdout : IO.FS.Stream) (store : Store) : IO Unit := do
  match ← readRequest stdin "" with
  | none => return
  | some request =>
    IO.Process.setCurrentDir store.home  -- what an earlier command changed is undone
    let (fields, store) ← match Json.parse request with
      | .error e => pure (refuse ("unreadable request: " ++ e), store)
      | .ok j => do
        let (fields, store) ← answer store j
        match j.getObjVal? "id" with
        | .ok id => pure (("id", id) :: fields, store)
        | .error _ => pure (fields, store)
    stdout.putStr ((Json.mkObj fields).compress ++ "\n\n")
    stdout.flush
    serve stdin stdout store

/-- Serve requests from stdin, or from the file named by the first argument (a one-shot batch),
read whole at the start: no request's code runs while the file (with every request's id) exists. -/
def main (args : List String) : IO Unit := do
  let requests ← match args with
    | path :: _ => do  -- read whole before any request runs (the runner then removes the file)
      let text ← IO.FS.readFile path
      let buffer ← IO.mkRef ({ data := text.toUTF8 } : IO.FS.Stream.Buffer)
      pure (IO.FS.Stream.ofBuffer buffer)
    | [] => IO.getStdin
  serve requests (← IO.getStdout) { states := #[], imported := [], home := ← IO.currentDir }

end
