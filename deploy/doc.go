// Package deploy holds no code: its directory has the operator's examples
// (compose files, their node configurations, the systemd unit), and its
// test checks them and the repository's Dockerfile against the code, since
// neither Docker nor a linter for them runs where the tests run.
package deploy
