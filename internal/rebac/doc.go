// Package rebac is Gatehouse's Zanzibar-style relationship engine: the
// relationship schema language, tuple syntax and validation, and a checker
// that answers check, expand, list-objects and list-subjects questions over
// tuples read at one storage revision, with budgets (depth, dispatched
// sub-problems, time), data-cycle handling and a revision-keyed cache.
//
// # Schema language
//
// A schema is a list of definitions, SpiceDB-like:
//
//	schema     = { definition } .
//	definition = "definition" name "{" { relation | permission } "}" .
//	relation   = "relation" name ":" subject { "|" subject } .
//	subject    = name [ "#" name ] .              // user | team#member
//	permission = "permission" name "=" union .
//	union      = inter { "+" inter } .            // lowest precedence
//	inter      = excl { "&" excl } .
//	excl       = term { "-" term } .              // highest precedence
//	term       = name [ "->" name ] | "(" union ")" .
//
// Names match [a-z][a-z0-9_]{0,63}; "definition", "relation" and
// "permission" are reserved. Comments are "// ..." and "/* ... */". A
// schema is at most 1 MiB with at most 1000 definitions; ParseSchema reports
// every error as "name:line:col: message".
// "rel->perm" (tuple-to-userset, "arrow") follows the tuples of relation rel
// and evaluates perm on each subject object; its left side must be a
// relation of the same definition. Permission definitions that refer to each
// other directly in a cycle (permission a = b; permission b = a) are errors;
// recursion through data (arrows, subject sets) is allowed and handled at
// check time, each (type, id, relation) being visited once per check.
//
// # Tuples
//
// A tuple is object#relation@subject: "order:o-1#owner@user:usr_alice" or,
// with a subject set, "order:o-1#viewer@team:eng#member". Ids are 1–256
// bytes of printable ASCII without whitespace, '#', '@' or ':'.
//
// # Checks
//
// Checker.Check evaluates a permission at one revision. Sets of objects of
// one type are checked together (one ReadTuples with up to 1000 ObjectIDs per
// step), unions short-circuit, and exceeding a budget is an error wrapping
// ErrBudget that names the budget: a partial evaluation never allows.
package rebac
