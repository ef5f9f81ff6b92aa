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
  program does not serve is answered `{"message": why}`.

The embedded Lean compiles this file to its interpreter's code on every start, and that
interpreter cannot call library functions through their reduced-arity variants, so the code
is deliberately plain: explicit recursion, no default or auto-bound arguments of library
functions (`InputContext.mk'` rather than `mkInputContext`), no `m!` strings.
-/
module
public import Lean.Elab.Frontend
open Lean Elab

/-- What the session remembers: the state after each answered command, and imported environments. -/
structure Store where
  states : Array Command.State
  imported : List (String × Environment)

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
def command (store : Store) (text : String) (start : Option Command.State) : IO (Json × Store) := do
  let input := inputOf text
  let (state, parserState, store) ← match start with
    | some s => pure ({ s with messages := {} }, { : Parser.ModuleParserState }, store)
    | none => fresh store input
  let done ← IO.processCommands input parserState state
  let after := done.commandState
  let messages ← messagesJson after.messages.toList #[]
  let id := store.states.size
  let store := { store with states := store.states.push { after with messages := {} } }
  return (Json.mkObj [("env", Json.num id), ("messages", Json.arr messages)], store)

def refuse (why : String) : Json := Json.mkObj [("message", Json.str why)]

def answer (store : Store) (request : String) : IO (Json × Store) := do
  match Json.parse request with
  | .error e => return (refuse ("unreadable request: " ++ e), store)
  | .ok j =>
    match (j.getObjValD "cmd").getStr? with
    | .error _ => return (refuse "this session serves only {\"cmd\": ...} requests", store)
    | .ok text =>
      match (j.getObjValD "env").getNat? with
      | .error _ => command store text none
      | .ok n =>
        if h : n < store.states.size then command store text (some store.states[n])
        else return (refuse "Unknown environment.", store)

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
    let (reply, store) ← answer store request
    stdout.putStr (reply.compress ++ "\n\n")
    stdout.flush
    serve stdin stdout store

/-- Serve requests from stdin, or from the file named by the first argument (a one-shot batch). -/
public def main (args : List String) : IO UInt32 := do
  let requests ← match args with
    | path :: _ => do
      let handle ← IO.FS.Handle.mk path IO.FS.Mode.read
      pure (IO.FS.Stream.ofHandle handle)
    | [] => IO.getStdin
  serve requests (← IO.getStdout) { states := #[], imported := [] }
  return 0
