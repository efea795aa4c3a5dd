// Package sitetest checks the built operator docs site (site/public, made by
// make site) in a real browser: Debian's chromium, headless, driven by
// chromedp. It builds nothing itself.
//
//	make site && make site-test
//
// Every page loads with no console error, no failed request and no request
// leaving the local server; every documented example carries its verified
// badge; every internal link and #anchor resolves; every feature page shows
// each scenario's status. Screenshots of the Quick Start page and of the
// troubleshooting page go to build/site/screenshots.
package sitetest
