// Package docscheck holds only a test: every repository path that
// README.md and docs/*.md name must exist, so the docs cannot keep
// describing files that were moved or never written.
package docscheck
