package hostile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Obj is a JSON object as ordered keys and raw (already encoded) values,
// so that mutations control the exact bytes: key order, whitespace, a key
// given twice, a value of the wrong type.
type Obj struct {
	k []string
	v []string
}

// Clone copies o.
func (o *Obj) Clone() *Obj {
	return &Obj{k: append([]string(nil), o.k...), v: append([]string(nil), o.v...)}
}

func (o *Obj) idx(k string) int {
	for i, x := range o.k {
		if x == k {
			return i
		}
	}
	return -1
}

// Set replaces k's raw value, or appends k.
func (o *Obj) Set(k, raw string) *Obj {
	if i := o.idx(k); i >= 0 {
		o.v[i] = raw
	} else {
		o.k, o.v = append(o.k, k), append(o.v, raw)
	}
	return o
}

// Add appends k with raw even when k is there already (a duplicate key).
func (o *Obj) Add(k, raw string) *Obj {
	o.k, o.v = append(o.k, k), append(o.v, raw)
	return o
}

// Get is k's raw value ("" when absent).
func (o *Obj) Get(k string) string {
	if i := o.idx(k); i >= 0 {
		return o.v[i]
	}
	return ""
}

// Del removes k.
func (o *Obj) Del(k string) *Obj {
	if i := o.idx(k); i >= 0 {
		o.k = append(o.k[:i:i], o.k[i+1:]...)
		o.v = append(o.v[:i:i], o.v[i+1:]...)
	}
	return o
}

// Render writes the object with sep after each comma and colon.
func (o *Obj) Render(sep string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range o.k {
		if i > 0 {
			b.WriteString("," + sep)
		}
		b.WriteString(Str(o.k[i]))
		b.WriteString(":" + sep)
		b.WriteString(o.v[i])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Bytes is the object without whitespace.
func (o *Obj) Bytes() []byte { return o.Render("") }

// Reversed is o with keys in reverse byte order: a reordering that changes
// no signed content for a provider that signs fields sorted by name.
func (o *Obj) Reversed() *Obj {
	idx := make([]int, len(o.k))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return o.k[idx[a]] > o.k[idx[b]] })
	out := &Obj{}
	for _, i := range idx {
		out.k, out.v = append(out.k, o.k[i]), append(out.v, o.v[i])
	}
	return out
}

// AsForm is o's fields as a form, string values unquoted.
func (o *Obj) AsForm() Form {
	var f Form
	for i, k := range o.k {
		v := o.v[i]
		if s, err := strconv.Unquote(v); err == nil {
			v = s
		}
		f = append(f, KV{k, v})
	}
	return f
}

// ParseObj reads a JSON object written as raw into its keys and raw
// values, in order, so that a mutation can change a nested object's
// fields (a value that is itself an object) and write it back with Set.
func ParseObj(raw string) (*Obj, error) {
	d := json.NewDecoder(strings.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("hostile: not a JSON object")
	}
	o := &Obj{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		o.Add(k, string(v))
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

// Str is s as a JSON string (no HTML escaping, so the bytes stay readable).
func Str(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// KV is one form field.
type KV struct{ K, V string }

// Form is a form body as ordered fields.
type Form []KV

// Clone copies f.
func (f Form) Clone() Form { return append(Form(nil), f...) }

// Get is k's first value ("" when absent).
func (f Form) Get(k string) string {
	for _, p := range f {
		if p.K == k {
			return p.V
		}
	}
	return ""
}

// Set replaces k's value in place, or appends k.
func (f Form) Set(k, v string) Form {
	for i := range f {
		if f[i].K == k {
			f[i].V = v
			return f
		}
	}
	return append(f, KV{k, v})
}

// Del is f without k (a new slice).
func (f Form) Del(k string) Form {
	out := f[:0:0]
	for _, p := range f {
		if p.K != k {
			out = append(out, p)
		}
	}
	return out
}

// Render is the form's body, query-escaped.
func (f Form) Render() []byte {
	parts := make([]string, len(f))
	for i, p := range f {
		parts[i] = url.QueryEscape(p.K) + "=" + url.QueryEscape(p.V)
	}
	return []byte(strings.Join(parts, "&"))
}

// ContentType is a header with only Content-Type set to ct.
func ContentType(ct string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", ct)
	return h
}

// JSONHeader is ContentType("application/json").
func JSONHeader() http.Header { return ContentType("application/json") }

// FormHeader is ContentType("application/x-www-form-urlencoded").
func FormHeader() http.Header { return ContentType("application/x-www-form-urlencoded") }

// TextHeader is ContentType("text/plain").
func TextHeader() http.Header { return ContentType("text/plain") }
