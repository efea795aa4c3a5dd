// Package houserules holds the tests that keep the repository's own rules,
// the ones no compiler checks: the README's layout names every directory
// that exists and no other, and no function in cmd/, mockas/, mockmcp/ or
// proxy/ is over cyclomatic complexity 25 (gocyclo), tests included.
//
// It has no code of its own; `make unit` runs its tests.
package houserules
