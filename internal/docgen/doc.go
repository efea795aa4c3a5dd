// Package docgen generates the parts of the operator documentation that
// code owns, and the data the docs site is built from.
//
// Generated tables live in the Markdown pages under docs/, between two
// markers that name a generator:
//
//	<!-- BEGIN GENERATED config-reference: run make docs to update -->
//	| Option | Type | Default | Description |
//	...
//	<!-- END GENERATED config-reference -->
//
// [Check] compares every such block with what its generator produces now
// (a unit test runs it, so a table that disagrees with the code fails
// make test), and [Update] rewrites the blocks (make docs). A new table,
// such as the metrics, log events or error codes, is one more entry in
// [Generators] whose function reads a list the code exports, plus the two
// markers in the page that shows it.
//
// [WriteSite] turns a results manifest (build/conformance/manifest.json)
// and the feature files into the site's generated inputs: the data the
// code-block render hook badges examples with, and one page per feature
// file showing each scenario's status.
package docgen
