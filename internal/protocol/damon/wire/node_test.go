package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Differential test against Node: for thousands of generated documents
// (tricky numbers, escapes, lone surrogates, invalid UTF-8, duplicate and
// array-index keys, random whitespace, corrupted copies), compare
//   - validity: ParseEnvelope/AppendCanonical/Decoder vs JSON.parse,
//   - forwarding bytes: AppendCanonical vs JSON.stringify(JSON.parse(doc)),
//     and NewIDTemplate vs the same after `m.id = <uuid>`,
//   - classification: ParseEnvelope vs a transcription of the reference's
//     Router.onMessage / Router.forward / Client.identify logic.
// Skipped when node is not installed.

const nodeScript = `
const TOKEN = 'secret';
const PH = '00000000-0000-4000-8000-000000000000';
function key(v) {
  if (v === undefined) return 'u';
  if (v === null) return 'null';
  if (typeof v === 'string') return 's' + JSON.stringify(v);
  if (typeof v === 'number') return 'n' + String(v);
  if (typeof v === 'boolean') return String(v);
  return 'o';
}
const lines = require('fs').readFileSync(0, 'utf8').split('\n'); lines.pop();
const out = [];
for (const l of lines) {
  const s = Buffer.from(l, 'base64').toString();
  let m;
  try { m = JSON.parse(s); } catch (e) { out.push({ok: false}); continue; }
  const r = {ok: true, canon: Buffer.from(JSON.stringify(m)).toString('base64')};
  if (m !== null && typeof m === 'object' && !Array.isArray(m)) {
    const c = JSON.parse(JSON.stringify(m)); // the Redis round trip
    c.id = PH;                                // Client.send for op 0
    r.tmpl = Buffer.from(JSON.stringify(c)).toString('base64');
  }
  try {
    switch (m.op) {                           // Router.onMessage
      case 0: case 5:
        switch (m.intent.target) {            // Router.forward
          case 'GLOBAL': case 'GROUP': case 'DIRECT':
            r.cls = 'fwd:' + m.intent.target; r.ident = key(m.intent.identifier); break;
          default: r.cls = 'bad_target';
        }
        break;
      case 1: {                               // Client.identify
        const data = m.data;
        if (!data.token || !data.group) r.cls = 'identify_failed';
        else if (data.token !== TOKEN) r.cls = 'identify_failed';
        else { r.cls = 'identify_ok'; r.group = key(data.group); }
        break;
      }
      case 2: r.cls = 'ignored'; break;
      case 3: r.cls = 'ping'; break;
      case 4: r.cls = 'pong'; break;
      default: r.cls = 'unknown_op';
    }
  } catch (e) { r.cls = 'typeerror'; }
  out.push(r);
}
process.stdout.write(JSON.stringify(out));
`

type nodeResult struct {
	OK    bool   `json:"ok"`
	Canon []byte `json:"canon"`
	Tmpl  []byte `json:"tmpl"`
	Cls   string `json:"cls"`
	Ident string `json:"ident"`
	Group string `json:"group"`
}

func runNode(t *testing.T, docs []string) []nodeResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	var in strings.Builder
	for _, d := range docs {
		in.WriteString(base64.StdEncoding.EncodeToString([]byte(d)))
		in.WriteByte('\n')
	}
	cmd := exec.Command(node, "-e", nodeScript)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var res []nodeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output: %v", err)
	}
	if len(res) != len(docs) {
		t.Fatalf("node returned %d results for %d docs", len(res), len(docs))
	}
	return res
}

// jsKey mirrors key() in the Node script.
func jsKey(v Value) string {
	switch v.Kind() {
	case KindUndefined:
		return "u"
	case KindNull:
		return "null"
	case KindTrue:
		return "true"
	case KindFalse:
		return "false"
	case KindString:
		b, _ := AppendCanonical(nil, v.Raw())
		return "s" + string(b)
	case KindNumber:
		switch f := v.Float(); {
		case math.IsInf(f, 1):
			return "nInfinity"
		case math.IsInf(f, -1):
			return "n-Infinity"
		default:
			return "n" + string(appendJSFloat(nil, f))
		}
	}
	return "o"
}

func goClass(doc []byte) (cls, ident, group string) {
	env, err := ParseEnvelope(doc)
	switch err {
	case nil:
	case ReasonParse:
		return "!parse", "", ""
	case ReasonNotObject:
		if string(bytes.Trim(doc, " \t\r\n")) == "null" {
			return "typeerror", "", "" // null.op throws
		}
		return "unknown_op", "", ""
	case ReasonUnknownOp:
		return "unknown_op", "", ""
	case ReasonNoIntent, ReasonIdentifyNoData:
		return "typeerror", "", ""
	case ReasonBadTarget:
		return "bad_target", "", ""
	default:
		return "unexpected " + err.Error(), "", ""
	}
	switch env.Op {
	case OpEvent, OpReply:
		return "fwd:" + env.Target.String(), jsKey(env.Identifier), ""
	case OpIdentify:
		if env.Identify.Accept("secret") {
			return "identify_ok", "", jsKey(env.Identify.Group)
		}
		return "identify_failed", "", ""
	case OpDisconnect:
		return "ignored", "", ""
	case OpPing:
		return "ping", "", ""
	case OpPong:
		return "pong", "", ""
	}
	return "?", "", ""
}

func TestNodeDifferential(t *testing.T) {
	docs := append([]string(nil), handPickedDocs...)
	r := rand.New(rand.NewPCG(1, 2))
	for range 4000 {
		g := docGen{r: r}
		d := g.envelope()
		if r.IntN(8) == 0 {
			d = g.corrupt(d)
		}
		docs = append(docs, d)
	}
	res := runNode(t, docs)
	fails := 0
	for i, doc := range docs {
		want := res[i]
		fail := func(format string, args ...any) {
			t.Helper()
			fails++
			if fails <= 20 {
				t.Errorf("doc %q: "+format, append([]any{doc}, args...)...)
			}
		}
		canon, cerr := AppendCanonical(nil, []byte(doc))
		cls, ident, group := goClass([]byte(doc))
		frames := feedAll(NewDecoder(Limits{}), []byte(doc+" "))
		if !want.OK {
			if cerr == nil || cls != "!parse" {
				fail("node rejects it; canonical err %v, class %s", cerr, cls)
			}
			if len(frames) == 1 && frames[0] == strings.Trim(doc, " \t\r\n") {
				fail("node rejects it but the decoder emitted it as one document")
			}
			continue
		}
		if cerr != nil {
			fail("node accepts it; canonical err %v", cerr)
			continue
		}
		if !bytes.Equal(canon, want.Canon) {
			fail("canonical\n got %s\nwant %s", canon, want.Canon)
		}
		if len(frames) != 1 || frames[0] != strings.Trim(doc, " \t\r\n") {
			fail("decoder frames %q", frames)
		}
		if want.Tmpl != nil {
			tm, err := NewIDTemplate([]byte(doc))
			var ph UUID
			copy(ph[:], "00000000-0000-4000-8000-000000000000")
			if err != nil {
				fail("template err %v", err)
			} else if got := tm.WithID(nil, ph); !bytes.Equal(got, want.Tmpl) {
				fail("template\n got %s\nwant %s", got, want.Tmpl)
			}
		}
		if cls != want.Cls || ident != want.Ident || group != want.Group {
			fail("class got %s/%s/%s want %s/%s/%s", cls, ident, group, want.Cls, want.Ident, want.Group)
		}
	}
	if fails > 0 {
		t.Fatalf("%d of %d documents differ from Node", fails, len(docs))
	}
	t.Logf("%d documents agree with Node", len(docs))
}

var handPickedDocs = []string{
	`{"op": 0 , "a" : [1 , 2]}`, `{"n":1e3}`, `{"n":-0}`, `{"n":1e400}`, `{"n":-1e400}`,
	`{"n":12345678901234567890}`, `{"n":1e21}`, `{"n":1e20}`, `{"n":0.000001}`, `{"n":0.0000001}`,
	`{"n":1.5e-7}`, `{"n":1e-400}`, `{"n":5e-324}`, `{"n":1.7976931348623157e308}`, `{"n":100.0}`,
	`{"n":1E+2}`, `{"n":123e-2}`, `{"n":1.2345678901234567e-7}`, `{"n":9007199254740993}`,
	`{"a":1,"a":2}`, `{"a":1,"b":2,"a":3}`, `{"b":1,"2":2,"1":3,"a":4}`,
	`{"a":1,"4294967294":2,"4294967295":3,"9007199254740991":4,"01":5,"0":6,"-1":7}`,
	`{"__proto__":{"op":0},"x":1}`, `{"x":1,"__proto__":2,"__proto__":3}`, `{"toJSON":1}`,
	`{"s":"\u0041\/\b\f\n\r\t\u0001\u001f\u007f\u2028\u00e9"}`, `{"s":"\ud800"}`, `{"s":"\udc00\ud800"}`,
	`{"s":"\uD83D\uDE00\uDBFF"}`, `{"\u006fp":1}`, `{"op":1,"o\u0070":3}`, "\ufeff{}", `{"a":1}{"b":2}`,
	`[1,2]`, `"x"`, `null`, `3`, "{\"s\":\"a\x00b\"}", "{\"s\":\"\xe2\x82\"}", "{\"s\":\"\xed\xa0\x80\"}",
	"{\"s\":\"\xf4\x90\x80\x80\"}", "{\"s\":\"\xe0\x80\x7f\"}", "{\"\xff\":1,\"\xfe\":2}",
	// Spec §12 transcript and checklist items.
	`{"op":1,"data":{"group":"g1","token":"wrong"}}`, `{"op":1,"data":{"group":"g1","token":"secret"}}`,
	`{"op":1}`, `{"op":1,"data":null}`, `{"op":1,"data":"x"}`, `{"op":1,"data":{"group":"","token":"secret"}}`,
	`{"op":1,"data":{"group":5,"token":"secret"}}`, `{"op":1,"data":{"group":"g","token":"se\u0063ret"}}`,
	`{"id":"X-global","op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GLOBAL"}}`,
	`{"id":"X-group","op":0,"event":"E","data":1,"intent":{"target":"GROUP","identifier":"g1"}}`,
	`{"id":"Y-reply","op":5,"event":"R","data":2,"intent":{"target":"DIRECT","identifier":"5cba6e20-5df7-44ad-819e-dfb7bbce494d"}}`,
	`{"op":0,"event":"NOINTENT","data":4}`, `{"op":5,"event":"LOWER","data":5,"intent":{"target":"global"}}`,
	`{"op":0,"event":"NOID","data":[1,2],"intent":{"target":"GLOBAL"}}`, `{"op":3}`, `{"op":4}`, `{"op":2,"data":"NO_REASON"}`,
	`{"op":"0","intent":{"target":"GLOBAL"}}`, `{"op":-0,"intent":{"target":"GLOBAL"}}`, `{"op":1.0000000000000001}`,
	`{"op":0,"intent":"GLOBAL"}`, `{"op":0,"intent":[]}`, `{"op":0,"intent":{"target":["GLOBAL"]}}`,
	`{"op":0,"intent":{"target":"\u0047LOBAL","identifier":1e400}}`, `{"op":6}`, `{"op":0.5}`, `{}`,
}

// docGen makes envelope-shaped JSON with the features JSON.parse and
// JSON.stringify treat specially.
type docGen struct{ r *rand.Rand }

func (g docGen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g docGen) ws() string {
	if g.r.IntN(4) != 0 {
		return ""
	}
	return g.pick([]string{" ", "\n", "\t", "\r\n", "  "})
}

var (
	genKeys = []string{"op", "id", "intent", "data", "event", "target", "identifier", "token", "group",
		`o\u0070`, `\u0069d`, `t\u0061rget`, "0", "1", "10", "9", "4294967294", "4294967295", "01", "-1",
		"__proto__", "a", "b", "é", `\ud800`, `\uD83D\uDE00`, "\xff", "\xe2\x82"}
	genNumbers = []string{"0", "-0", "1", "1.0", "5", "5e-0", "0.5e1", "2", "3", "4", "6", "-1", "1e400", "-1e400",
		"12345678901234567890", "1e21", "1e20", "0.000001", "1e-7", "1.5e-7", "100.0", "1E+2", "123e-2", "1e-400",
		"9007199254740993", "0.1", "4.35", "1.7976931348623157e308", "5e-324", "2.5E-310", "0.30000000000000004"}
	genStrings = []string{"GLOBAL", "GROUP", "DIRECT", "global", "secret", "g1", "", `\u0000`, `\ud800`,
		`\udc00\ud800`, `\uD83D\uDE00`, `a\/b`, `\b\f\n\r\t\"\\`, "\xe2\x82", "\xff", "\xed\xa0\x80", "é",
		"\u2028", `\u0047LOBAL`, `se\u0063ret`, "\x7f", "😀", `\u00E9`}
)

func (g docGen) number() string {
	if g.r.IntN(3) == 0 {
		f := g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(60)-30))
		return strconv.FormatFloat(f, g.pick([]string{"e", "E", "f", "g"})[0], -1, 64)
	}
	return g.pick(genNumbers)
}

func (g docGen) value(depth int) string {
	n := 7
	if depth > 3 {
		n = 4
	}
	switch g.r.IntN(n) {
	case 0:
		return g.number()
	case 1, 2:
		return `"` + g.pick(genStrings) + `"`
	case 3:
		return g.pick([]string{"true", "false", "null"})
	case 4, 5:
		return g.object(depth+1, nil)
	default:
		var b strings.Builder
		b.WriteString("[" + g.ws())
		for i := range g.r.IntN(4) {
			if i > 0 {
				b.WriteString("," + g.ws())
			}
			b.WriteString(g.value(depth+1) + g.ws())
		}
		return b.String() + "]"
	}
}

// object writes an object with random keys plus the forced members.
func (g docGen) object(depth int, forced [][2]string) string {
	var members [][2]string
	for range g.r.IntN(4) {
		members = append(members, [2]string{g.pick(genKeys), g.value(depth)})
	}
	members = append(members, forced...)
	g.r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	var b strings.Builder
	b.WriteString("{" + g.ws())
	for i, m := range members {
		if i > 0 {
			b.WriteString("," + g.ws())
		}
		b.WriteString(`"` + m[0] + `"` + g.ws() + ":" + g.ws() + m[1] + g.ws())
	}
	return b.String() + "}"
}

func (g docGen) envelope() string {
	switch g.r.IntN(10) {
	case 0:
		return g.ws() + g.value(0) + g.ws()
	case 1, 2:
		data := g.object(1, [][2]string{{"token", `"` + g.pick([]string{"secret", "secret", "wrong", "", `se\u0063ret`}) + `"`},
			{"group", g.value(2)}})
		if g.r.IntN(5) == 0 {
			data = g.value(1)
		}
		return g.object(0, [][2]string{{"op", g.pick([]string{"1", "1.0", "1e0"})}, {"data", data}})
	}
	intent := g.object(1, [][2]string{{"target", `"` + g.pick(genStrings[:3]) + `"`}, {"identifier", g.value(2)}})
	if g.r.IntN(6) == 0 {
		intent = g.value(1)
	}
	op := g.number()
	if g.r.IntN(3) != 0 {
		op = g.pick([]string{"0", "5", "0.0", "5e0", "-0", "3", "4", "2"})
	}
	return g.ws() + g.object(0, [][2]string{{"op", op}, {"intent", intent}}) + g.ws()
}

// corrupt truncates d or inserts a byte that is often fatal.
func (g docGen) corrupt(d string) string {
	i := g.r.IntN(len(d) + 1)
	if g.r.IntN(2) == 0 {
		return d[:i]
	}
	return d[:i] + g.pick([]string{"}", "]", "{", "[", ",", ":", `"`, "x", `\`, "\x01", " "}) + d[i:]
}
