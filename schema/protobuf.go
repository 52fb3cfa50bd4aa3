package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Protobuf compatibility rule ids. Those Confluent has keep Confluent's
// names; the others are handoff's own. rules-protobuf.md documents each.
const (
	pbSyntaxChanged          = "SYNTAX_CHANGED"
	pbPackageChanged         = "PACKAGE_CHANGED"
	pbMessageRemoved         = "MESSAGE_REMOVED"
	pbFieldKindChanged       = "FIELD_KIND_CHANGED"
	pbFieldScalarKindChanged = "FIELD_SCALAR_KIND_CHANGED"
	pbFieldNamedTypeChanged  = "FIELD_NAMED_TYPE_CHANGED"
	pbFieldCardinality       = "FIELD_CARDINALITY_CHANGED"
	pbFieldNameChanged       = "FIELD_NAME_CHANGED"
	pbFieldNumberReused      = "FIELD_NUMBER_REUSED"
	pbFieldNumberChanged     = "FIELD_NUMBER_CHANGED"
	pbRequiredFieldAdded     = "REQUIRED_FIELD_ADDED"
	pbRequiredFieldRemoved   = "REQUIRED_FIELD_REMOVED"
	pbOneofFieldRemoved      = "ONEOF_FIELD_REMOVED"
	pbMultipleFieldsToOneof  = "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
	pbFieldToExistingOneof   = "FIELD_MOVED_TO_EXISTING_ONEOF"
	pbEnumConstRemoved       = "ENUM_CONST_REMOVED"
	pbReservedFieldReused    = "RESERVED_FIELD_REUSED"
)

// pbMainFile is the name the schema's own text is compiled under. It is not
// a plausible import path, so it cannot collide with a reference.
const pbMainFile = "<schema>.proto"

// protoSchema is a compiled Protobuf schema.
type protoSchema struct {
	file  protoreflect.FileDescriptor
	canon string
}

func parseProtobuf(ctx context.Context, s Schema) (parsed, error) {
	srcs := make(map[string]string, len(s.References)+1)
	for name, text := range s.References {
		srcs[name] = text
	}
	srcs[pbMainFile] = s.Text
	c := protocompile.Compiler{
		// Sources come from the map only: the accessor never opens a file,
		// and the well-known google/protobuf imports are built in.
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(srcs),
		}),
		MaxParallelism: 1,
	}
	files, err := c.Compile(ctx, pbMainFile)
	if err != nil {
		return nil, pbParseError(err)
	}
	if len(files) != 1 {
		return nil, &ParseError{Type: Protobuf, Reason: fmt.Sprintf("compiler returned %d files, want 1", len(files))}
	}
	return &protoSchema{file: files[0], canon: canonicalProto(s.Text)}, nil
}

// pbParseError turns a compiler error into a *ParseError with a line:column
// location (prefixed with the import path when the error is in a reference).
func pbParseError(err error) *ParseError {
	var pe protocompile.PanicError
	if errors.As(err, &pe) {
		return &ParseError{Type: Protobuf, Reason: fmt.Sprintf("protobuf compiler failed: %v", pe.Value)}
	}
	var ewp reporter.ErrorWithPos
	if errors.As(err, &ewp) {
		pos := ewp.GetPosition()
		loc := ""
		if pos.Line > 0 {
			loc = fmt.Sprintf("%d:%d", pos.Line, pos.Col)
		}
		if pos.Filename != "" && pos.Filename != pbMainFile {
			if loc == "" {
				loc = pos.Filename
			} else {
				loc = pos.Filename + ":" + loc
			}
		}
		return &ParseError{Type: Protobuf, Location: loc, Reason: ewp.Unwrap().Error()}
	}
	return &ParseError{Type: Protobuf, Reason: strings.ReplaceAll(err.Error(), pbMainFile, "schema")}
}

// canonicalProto normalises line endings, trims trailing whitespace on every
// line and drops leading and trailing blank lines. Nothing else: comments
// and layout are kept, so two texts differing in more than that are two
// schemas.
func canonicalProto(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

func (p *protoSchema) canonical() string { return p.canon }

// MessageDescriptor returns the message a Confluent message-index path names:
// the index of a message among the file's top-level messages, then the index
// among that message's nested messages, and so on. An empty path means the
// first message, as Confluent's wire format writes [0] as a lone 0.
func (p *Parsed) MessageDescriptor(indexes []int) (protoreflect.MessageDescriptor, error) {
	ps, err := p.protobuf("MessageDescriptor")
	if err != nil {
		return nil, err
	}
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	msgs := ps.file.Messages()
	var md protoreflect.MessageDescriptor
	for depth, i := range indexes {
		if i < 0 || i >= msgs.Len() {
			where := "top-level messages"
			if md != nil {
				where = "messages nested in " + string(md.FullName())
			}
			return nil, fmt.Errorf("schema: protobuf message index %v: index %d at depth %d out of range (%d %s)", indexes, i, depth, msgs.Len(), where)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// MessageIndexes returns the Confluent message-index path of the message
// with the given full name (a leading dot is ignored): its index among the
// file's top-level messages, then among the nested messages. The first
// top-level message is [0].
func (p *Parsed) MessageIndexes(fullName string) ([]int, error) {
	ps, err := p.protobuf("MessageIndexes")
	if err != nil {
		return nil, err
	}
	name := protoreflect.FullName(strings.TrimPrefix(fullName, "."))
	if idx := pbFindIndexes(ps.file.Messages(), name, nil); idx != nil {
		return idx, nil
	}
	return nil, fmt.Errorf("schema: protobuf message %q is not declared in the schema", fullName)
}

func pbFindIndexes(msgs protoreflect.MessageDescriptors, name protoreflect.FullName, prefix []int) []int {
	for i := range msgs.Len() {
		md := msgs.Get(i)
		path := append(slices.Clip(prefix), i)
		if md.FullName() == name {
			return path
		}
		if strings.HasPrefix(string(name), string(md.FullName())+".") {
			if idx := pbFindIndexes(md.Messages(), name, path); idx != nil {
				return idx
			}
		}
	}
	return nil
}

func (p *Parsed) protobuf(op string) (*protoSchema, error) {
	if p == nil {
		return nil, fmt.Errorf("schema: %s: nil schema", op)
	}
	ps, ok := p.impl.(*protoSchema)
	if !ok {
		return nil, fmt.Errorf("schema: %s: schema type is %s, not %s", op, p.Type(), Protobuf)
	}
	return ps, nil
}

// validate unmarshals payload as the file's first message, keeping unknown
// fields, and then checks that every required (proto2) field is set.
func (p *protoSchema) validate(payload []byte) error {
	if p.file.Messages().Len() == 0 {
		return &ValidationError{Rule: "protobuf", Reason: "the schema declares no message type"}
	}
	md := p.file.Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	opts := proto.UnmarshalOptions{AllowPartial: true, DiscardUnknown: false}
	if err := opts.Unmarshal(payload, m); err != nil {
		return &ValidationError{
			Path:   pbLocate(md, payload, ""),
			Rule:   "protobuf",
			Reason: fmt.Sprintf("not a valid %s: %v", md.FullName(), err),
		}
	}
	if err := proto.CheckInitialized(m); err != nil {
		path := pbMissingRequired(m, "")
		reason := err.Error()
		if path != "" {
			reason = "required field not set"
		}
		return &ValidationError{Path: path, Rule: "required", Reason: reason}
	}
	return nil
}

// pbLocate finds, best effort, the field whose bytes fail to unmarshal: it
// splits b into field records and unmarshals each alone, descending into
// the first failing embedded message.
func pbLocate(md protoreflect.MessageDescriptor, b []byte, prefix string) string {
	opts := proto.UnmarshalOptions{AllowPartial: true}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return prefix
		}
		name := strconv.Itoa(int(num))
		fd := md.Fields().ByNumber(num)
		if fd != nil {
			name = string(fd.Name())
		}
		vlen := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vlen < 0 {
			return prefix + "/" + name
		}
		if err := opts.Unmarshal(b[:n+vlen], dynamicpb.NewMessage(md)); err != nil {
			if fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && typ == protowire.BytesType {
				if v, m := protowire.ConsumeBytes(b[n:]); m >= 0 {
					return pbLocate(fd.Message(), v, prefix+"/"+name)
				}
			}
			return prefix + "/" + name
		}
		b = b[n+vlen:]
	}
	return prefix
}

// pbMissingRequired returns the path of the first required field not set,
// searching embedded messages, list elements (by index) and map values (by
// key); "" when it finds none.
func pbMissingRequired(m protoreflect.Message, prefix string) string {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Cardinality() == protoreflect.Required && !m.Has(fd) {
			return prefix + "/" + string(fd.Name())
		}
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		path := prefix + "/" + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				continue
			}
			var keys []protoreflect.MapKey
			m.Get(fd).Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if p := pbMissingRequired(m.Get(fd).Map().Get(k).Message(), path+"/"+k.String()); p != "" {
					return p
				}
			}
		case fd.Message() == nil:
		case fd.IsList():
			l := m.Get(fd).List()
			for j := range l.Len() {
				if p := pbMissingRequired(l.Get(j).Message(), path+"/"+strconv.Itoa(j)); p != "" {
					return p
				}
			}
		default:
			if p := pbMissingRequired(m.Get(fd).Message(), path); p != "" {
				return p
			}
		}
	}
	return ""
}

// compat reports how data written with writer fails to be read by p.
// Messages are matched by full name (relative to the package when the
// package changed), fields by number.
func (p *protoSchema) compat(writer parsed) []Violation {
	w, ok := writer.(*protoSchema)
	if !ok {
		return nil
	}
	d := &pbDiff{
		reader:    p,
		writer:    w,
		readerMsg: map[string]protoreflect.MessageDescriptor{},
		readerEnm: map[string]protoreflect.EnumDescriptor{},
		seen:      map[[2]protoreflect.FullName]bool{},
	}
	pbIndexFile(p.file, d.readerMsg, d.readerEnm, map[string]bool{})
	return d.run()
}

type pbDiff struct {
	reader, writer *protoSchema
	readerMsg      map[string]protoreflect.MessageDescriptor
	readerEnm      map[string]protoreflect.EnumDescriptor
	seen           map[[2]protoreflect.FullName]bool
	queue          [][2]protoreflect.Descriptor // {reader, writer} message or enum pairs
	out            []Violation
}

func (d *pbDiff) add(rule, path, msg, hint string) {
	d.out = append(d.out, Violation{Rule: rule, Path: path, Message: msg, Hint: hint})
}

// addStrict adds a finding only StrictRules refuse: Confluent's registry
// accepts the change (rules-protobuf.md says why, per rule).
func (d *pbDiff) addStrict(rule, path, msg, hint string) {
	d.out = append(d.out, Violation{Rule: rule, Path: path, Message: msg, Hint: hint, Strict: true})
}

// pbLabelsCompared reports whether Confluent's registry compares the
// labels (optional, required, repeated) of a field of this kind: only for
// numbers, bools and enums. A string, bytes or message field may change
// its label there.
func pbLabelsCompared(fd protoreflect.FieldDescriptor) bool {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// pbKey names a type so that a package rename still matches types: types in
// the schema's own package are keyed by their package-relative name.
func pbKey(s *protoSchema, d protoreflect.Descriptor) string {
	pkg := s.file.Package()
	if d.ParentFile() != nil && d.ParentFile().Package() == pkg {
		rel := strings.TrimPrefix(string(d.FullName()), string(pkg)+".")
		if pkg == "" {
			rel = string(d.FullName())
		}
		return "\x00" + rel
	}
	return string(d.FullName())
}

// pbIndexFile indexes every message and enum of f and of its imports.
func pbIndexFile(f protoreflect.FileDescriptor, msgs map[string]protoreflect.MessageDescriptor, enums map[string]protoreflect.EnumDescriptor, done map[string]bool) {
	if done[f.Path()] {
		return
	}
	done[f.Path()] = true
	var walk func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors)
	walk = func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			enums[string(es.Get(i).FullName())] = es.Get(i)
		}
		for i := range ms.Len() {
			msgs[string(ms.Get(i).FullName())] = ms.Get(i)
			walk(ms.Get(i).Messages(), ms.Get(i).Enums())
		}
	}
	walk(f.Messages(), f.Enums())
	for i := range f.Imports().Len() {
		pbIndexFile(f.Imports().Get(i).FileDescriptor, msgs, enums, done)
	}
}

func (d *pbDiff) lookupMsg(w protoreflect.MessageDescriptor) protoreflect.MessageDescriptor {
	k := pbKey(d.writer, w)
	if strings.HasPrefix(k, "\x00") {
		pkg := string(d.reader.file.Package())
		if pkg != "" {
			pkg += "."
		}
		k = pkg + k[1:]
	}
	return d.readerMsg[k]
}

func (d *pbDiff) lookupEnum(w protoreflect.EnumDescriptor) protoreflect.EnumDescriptor {
	k := pbKey(d.writer, w)
	if strings.HasPrefix(k, "\x00") {
		pkg := string(d.reader.file.Package())
		if pkg != "" {
			pkg += "."
		}
		k = pkg + k[1:]
	}
	return d.readerEnm[k]
}

func (d *pbDiff) enqueue(r, w protoreflect.Descriptor) {
	k := [2]protoreflect.FullName{r.FullName(), w.FullName()}
	if d.seen[k] {
		return
	}
	d.seen[k] = true
	d.queue = append(d.queue, [2]protoreflect.Descriptor{r, w})
}

func (d *pbDiff) run() []Violation {
	rf, wf := d.reader.file, d.writer.file
	if rf.Syntax() != wf.Syntax() {
		d.addStrict(pbSyntaxChanged, "",
			fmt.Sprintf("syntax changed: the writer uses %s, the reader %s; field presence, default values and enum semantics differ", wf.Syntax(), rf.Syntax()),
			"keep the earlier syntax; register a schema in another syntax under a new subject")
	}
	if rf.Package() != wf.Package() {
		d.add(pbPackageChanged, "",
			fmt.Sprintf("package changed from %q (writer) to %q (reader): every message's full name changed", wf.Package(), rf.Package()),
			"keep the package: typed consumers, the message-index lookup and google.protobuf.Any find messages by full name")
	}
	// Every message the writer declares must still be there; matched ones
	// are compared field by field.
	var walk func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors)
	walk = func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			if re := d.lookupEnum(es.Get(i)); re != nil {
				d.enqueue(re, es.Get(i))
			}
		}
		for i := range ms.Len() {
			wm := ms.Get(i)
			if wm.IsMapEntry() {
				continue
			}
			rm := d.lookupMsg(wm)
			if rm == nil {
				d.add(pbMessageRemoved, "/"+string(wm.FullName()),
					fmt.Sprintf("message %s of the writer is missing from the reader", wm.FullName()),
					"keep every message in every version (mark old ones deprecated); declare a new message type in a new imported file")
				continue
			}
			d.enqueue(rm, wm)
			walk(wm.Messages(), wm.Enums())
		}
	}
	walk(wf.Messages(), wf.Enums())
	for len(d.queue) > 0 {
		pair := d.queue[0]
		d.queue = d.queue[1:]
		switch r := pair[0].(type) {
		case protoreflect.MessageDescriptor:
			d.message(r, pair[1].(protoreflect.MessageDescriptor))
		case protoreflect.EnumDescriptor:
			d.enum(r, pair[1].(protoreflect.EnumDescriptor))
		}
	}
	return d.out
}

func pbRealOneof(fd protoreflect.FieldDescriptor) protoreflect.OneofDescriptor {
	if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
		return o
	}
	return nil
}

func (d *pbDiff) message(rm, wm protoreflect.MessageDescriptor) {
	path := "/" + string(wm.FullName())
	rfs, wfs := rm.Fields(), wm.Fields()
	for i := range wfs.Len() {
		wfd := wfs.Get(i)
		fpath := path + "/" + string(wfd.Name())
		rfd := rfs.ByNumber(wfd.Number())
		if rfd == nil {
			if wfd.Cardinality() == protoreflect.Required {
				d.add(pbRequiredFieldRemoved, fpath,
					fmt.Sprintf("required field %s (number %d) of the writer is missing from the reader", wfd.Name(), wfd.Number()),
					pbHintRequired)
			}
			if moved := rfs.ByName(wfd.Name()); moved != nil {
				d.addStrict(pbFieldNumberChanged, fpath,
					fmt.Sprintf("field %s moved from number %d (writer) to %d (reader): the reader never sees the writer's value", wfd.Name(), wfd.Number(), moved.Number()),
					"keep the field's number: the number, not the name, identifies a field on the wire")
			}
			continue
		}
		d.field(fpath, rfd, wfd)
	}
	for i := range rfs.Len() {
		rfd := rfs.Get(i)
		if rfd.Cardinality() == protoreflect.Required && wfs.ByNumber(rfd.Number()) == nil {
			d.add(pbRequiredFieldAdded, path+"/"+string(rfd.Name()),
				fmt.Sprintf("the reader requires field %s (number %d), which the writer does not have: its data fails to parse", rfd.Name(), rfd.Number()),
				pbHintRequired)
		}
	}
	d.oneofs(path, rm, wm)
}

func (d *pbDiff) field(fpath string, rfd, wfd protoreflect.FieldDescriptor) {
	vs := d.fieldType(fpath, rfd, wfd)
	if rfd.Name() != wfd.Name() {
		if len(vs) == 0 {
			d.addStrict(pbFieldNameChanged, fpath,
				fmt.Sprintf("field number %d is named %s by the writer and %s by the reader: the binary encoding still matches, but JSON and text encodings, field masks and code using the name break, and a new name usually means a reused number", wfd.Number(), wfd.Name(), rfd.Name()),
				fmt.Sprintf("give number %d one name in every version (%s or %s); if its meaning changed, reserve the number and the old name and add a new field with a new number", wfd.Number(), wfd.Name(), rfd.Name()))
		} else {
			add := d.add
			if allStrict(vs) {
				add = d.addStrict
			}
			add(pbFieldNumberReused, fpath,
				fmt.Sprintf("field number %d is reused: the writer has %s %s, the reader %s %s", wfd.Number(), pbTypeName(wfd), wfd.Name(), pbTypeName(rfd), rfd.Name()),
				fmt.Sprintf("restore the earlier field at number %d, or reserve the number and the earlier field's name and give the new field an unused number", wfd.Number()))
		}
	} else {
		d.out = append(d.out, vs...)
	}
	rreq, wreq := rfd.Cardinality() == protoreflect.Required, wfd.Cardinality() == protoreflect.Required
	switch {
	case rreq && !wreq:
		// Refused under either rule set, although Confluent's registry
		// accepts it for a string, bytes or message field: the reader's
		// parser rejects every message written without the field.
		msg := fmt.Sprintf("field %s is required by the reader but optional for the writer: data without it fails to parse", rfd.Name())
		if !pbLabelsCompared(rfd) {
			msg += " (Confluent's registry accepts this change, but the reader's parser rejects every message written without the field)"
		}
		d.add(pbRequiredFieldAdded, fpath, msg, pbHintRequired)
	case wreq && !rreq:
		add := d.add
		if !pbLabelsCompared(wfd) {
			add = d.addStrict
		}
		add(pbRequiredFieldRemoved, fpath,
			fmt.Sprintf("field %s is required by the writer but no longer by the reader", wfd.Name()),
			pbHintRequired)
	}
}

// fieldType compares the types and cardinality of two fields with one
// number, and queues the message and enum types they share for comparison.
func (d *pbDiff) fieldType(fpath string, rfd, wfd protoreflect.FieldDescriptor) []Violation {
	var vs []Violation
	add := func(rule, msg, hint string) {
		vs = append(vs, Violation{Rule: rule, Path: fpath, Message: msg, Hint: hint})
	}
	switch {
	case rfd.IsMap() != wfd.IsMap():
		add(pbFieldKindChanged,
			fmt.Sprintf("field %s changed from %s (writer) to %s (reader)", wfd.Name(), pbTypeName(wfd), pbTypeName(rfd)),
			pbHintNewField(wfd))
		return vs
	case rfd.IsMap():
		if rule, msg := d.valueType(rfd.MapKey(), wfd.MapKey()); rule != "" {
			add(rule, fmt.Sprintf("map key of field %s: %s", wfd.Name(), msg), pbHintNewField(wfd))
		}
		if rule, msg := d.valueType(rfd.MapValue(), wfd.MapValue()); rule != "" {
			add(rule, fmt.Sprintf("map value of field %s: %s", wfd.Name(), msg), pbHintNewField(wfd))
		}
		return vs
	}
	if rule, msg := d.valueType(rfd, wfd); rule != "" {
		add(rule, fmt.Sprintf("field %s: %s", wfd.Name(), msg), pbHintNewField(wfd))
	}
	if wfd.IsList() && !rfd.IsList() {
		add(pbFieldCardinality,
			fmt.Sprintf("field %s is repeated for the writer but singular for the reader: all values but the last are lost (packed numbers are not read at all)", wfd.Name()),
			"keep the field repeated; to change its cardinality reserve the number and add a new field")
		vs[len(vs)-1].Strict = !pbLabelsCompared(wfd)
	}
	return vs
}

// pbHintRequired is direction-neutral: the same rule reads as an addition
// in one direction and a removal in the other.
const pbHintRequired = "keep the same required fields in every version: add new fields as optional, and never make a field required or optional later"

func pbHintNewField(fd protoreflect.FieldDescriptor) string {
	return fmt.Sprintf("keep one type for number %d in every version; to change it, reserve the number and the earlier field's name and add a new field with a new number", fd.Number())
}

// pbWireGroup names the group of kinds that read each other's encoding.
func pbWireGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.BoolKind, protoreflect.EnumKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "bytes"
	}
	return k.String()
}

// pbEnforcesUTF8 reports whether a string field rejects invalid UTF-8, as
// protobuf-go decides it: proto3 and editions validate, proto2 does not.
func pbEnforcesUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
		return true
	}
	return fd.Syntax() == protoreflect.Proto3
}

func pbTypeName(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return fmt.Sprintf("map<%s, %s>", pbValueTypeName(fd.MapKey()), pbValueTypeName(fd.MapValue()))
	}
	if fd.IsList() {
		return "repeated " + pbValueTypeName(fd)
	}
	return pbValueTypeName(fd)
}

func pbValueTypeName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return string(fd.Message().FullName())
	case protoreflect.GroupKind:
		return "group " + string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

// valueType compares the value types of two fields (or map keys or values),
// ignoring cardinality, and returns the rule broken and why.
func (d *pbDiff) valueType(rfd, wfd protoreflect.FieldDescriptor) (string, string) {
	rk, wk := rfd.Kind(), wfd.Kind()
	isMsg := func(k protoreflect.Kind) bool { return k == protoreflect.MessageKind || k == protoreflect.GroupKind }
	changed := fmt.Sprintf("changed from %s (writer) to %s (reader)", pbValueTypeName(wfd), pbValueTypeName(rfd))
	switch {
	case isMsg(rk) || isMsg(wk):
		if rk != wk {
			return pbFieldKindChanged, changed
		}
		rm := d.lookupMsg(wfd.Message())
		if rm == nil || rm.FullName() != rfd.Message().FullName() {
			return pbFieldNamedTypeChanged, changed
		}
		d.enqueue(rfd.Message(), wfd.Message())
	case rk == protoreflect.EnumKind && wk == protoreflect.EnumKind:
		re := d.lookupEnum(wfd.Enum())
		if re == nil || re.FullName() != rfd.Enum().FullName() {
			return pbFieldNamedTypeChanged, changed
		}
		d.enqueue(rfd.Enum(), wfd.Enum())
	case rk == protoreflect.EnumKind || wk == protoreflect.EnumKind:
		// An enum is an int32 on the wire.
		if pbWireGroup(rk) != pbWireGroup(wk) {
			return pbFieldKindChanged, changed
		}
	case pbWireGroup(rk) != pbWireGroup(wk):
		return pbFieldScalarKindChanged, changed + ": the encodings are not wire-compatible"
	case wk == protoreflect.BytesKind && rk == protoreflect.StringKind && pbEnforcesUTF8(rfd):
		// Refused under either rule set, although Confluent's registry
		// accepts it: the reader's parser rejects such a message.
		return pbFieldScalarKindChanged, changed + ": a message whose bytes are not valid UTF-8 fails to parse under the reader (Confluent's registry accepts this change; the reader's parser does not)"
	}
	return "", ""
}

// oneofs checks that no writer oneof case disappears and that the writer
// cannot set, at once, two fields the reader holds in one oneof.
func (d *pbDiff) oneofs(path string, rm, wm protoreflect.MessageDescriptor) {
	rfs := rm.Fields()
	wos := wm.Oneofs()
	for i := range wos.Len() {
		wo := wos.Get(i)
		if wo.IsSynthetic() {
			continue
		}
		// The oneof lives on if the reader keeps any of its fields in one
		// oneof; a oneof dropped as a whole is a set of removed fields.
		kept := false
		for j := range wo.Fields().Len() {
			if rfd := rfs.ByNumber(wo.Fields().Get(j).Number()); rfd != nil && pbRealOneof(rfd) != nil {
				kept = true
			}
		}
		if !kept {
			continue
		}
		for j := range wo.Fields().Len() {
			wfd := wo.Fields().Get(j)
			if rfs.ByNumber(wfd.Number()) == nil {
				d.add(pbOneofFieldRemoved, path+"/"+string(wfd.Name()),
					fmt.Sprintf("field %s (number %d) of oneof %s is missing from the reader: when the writer sets it, the reader sees the oneof unset", wfd.Name(), wfd.Number(), wo.Name()),
					"every version must know every case of the oneof: never delete a case (deprecate it), and add cases only where consumers upgrade first (BACKWARD)")
			}
		}
	}
	ros := rm.Oneofs()
	for i := range ros.Len() {
		ro := ros.Get(i)
		if ro.IsSynthetic() {
			continue
		}
		var moved []string
		sources := map[protoreflect.FullName]bool{}
		for j := range ro.Fields().Len() {
			wfd := wm.Fields().ByNumber(ro.Fields().Get(j).Number())
			if wfd == nil {
				continue
			}
			if wo := pbRealOneof(wfd); wo != nil {
				sources[wo.FullName()] = true
			} else {
				moved = append(moved, string(wfd.Name()))
			}
		}
		switch {
		case len(moved) > 1 || len(sources) > 1:
			d.add(pbMultipleFieldsToOneof, path+"/"+string(ro.Name()),
				fmt.Sprintf("oneof %s holds fields the writer can set together (%s): the reader keeps only the last", ro.Name(), pbOneofSources(moved, sources)),
				"move at most one existing field into a new oneof; add new fields for the other cases")
		case len(moved) == 1 && len(sources) == 1:
			d.add(pbFieldToExistingOneof, path+"/"+moved[0],
				fmt.Sprintf("field %s was moved into the existing oneof %s: the writer can set it together with the oneof, the reader keeps only the last", moved[0], ro.Name()),
				"keep the field outside the oneof; add a new field to the oneof instead")
		}
	}
}

func pbOneofSources(moved []string, sources map[protoreflect.FullName]bool) string {
	parts := slices.Clone(moved)
	for o := range sources {
		parts = append(parts, "oneof "+string(o.Name()))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// enum reports writer values a closed reader enum lacks. Open (proto3)
// enums keep unknown values, so removing a value from them is compatible.
func (d *pbDiff) enum(re, we protoreflect.EnumDescriptor) {
	if !re.IsClosed() {
		return
	}
	vals := we.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if re.Values().ByNumber(v.Number()) == nil {
			d.addStrict(pbEnumConstRemoved, "/"+string(we.FullName())+"/"+string(v.Name()),
				fmt.Sprintf("value %s (%d) of closed enum %s is missing from the reader: a field holding it is read as unset", v.Name(), v.Number(), we.FullName()),
				"keep the enum value (mark it deprecated)")
		}
	}
}

// evolve reports what p, the newer schema, does that is unsafe whatever the
// direction of the read: a number or name that older reserved is used
// again. Unlike compat it needs to know which schema is newer (a field in
// one version and reserved in the other is the safe way to delete a field
// when the reserving one is newer); Check does not call it yet.
func (p *protoSchema) evolve(older parsed) []Violation {
	o, ok := older.(*protoSchema)
	if !ok {
		return nil
	}
	newMsg := map[string]protoreflect.MessageDescriptor{}
	newEnum := map[string]protoreflect.EnumDescriptor{}
	pbIndexFile(p.file, newMsg, newEnum, map[string]bool{})
	d := &pbDiff{reader: p, writer: o, readerMsg: newMsg, readerEnm: newEnum}
	var walk func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors)
	walk = func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			oe := es.Get(i)
			ne := d.lookupEnum(oe)
			if ne == nil {
				continue
			}
			for j := range ne.Values().Len() {
				v := ne.Values().Get(j)
				if oe.ReservedRanges().Has(v.Number()) || oe.ReservedNames().Has(v.Name()) {
					d.addStrict(pbReservedFieldReused, "/"+string(ne.FullName())+"/"+string(v.Name()),
						fmt.Sprintf("enum value %s (%d) takes a number or name the earlier version reserved", v.Name(), v.Number()),
						"never reuse a reserved enum number or name; pick unused ones")
				}
			}
		}
		for i := range ms.Len() {
			om := ms.Get(i)
			nm := d.lookupMsg(om)
			if om.IsMapEntry() || nm == nil {
				continue
			}
			for j := range nm.Fields().Len() {
				f := nm.Fields().Get(j)
				var what []string
				if om.ReservedRanges().Has(f.Number()) {
					what = append(what, fmt.Sprintf("number %d", f.Number()))
				}
				if om.ReservedNames().Has(f.Name()) {
					what = append(what, fmt.Sprintf("name %q", f.Name()))
				}
				if len(what) > 0 {
					d.addStrict(pbReservedFieldReused, "/"+string(nm.FullName())+"/"+string(f.Name()),
						fmt.Sprintf("field %s takes the %s the earlier version reserved: data written before the reservation is misread", f.Name(), strings.Join(what, " and ")),
						"never reuse a reserved number or name; give the field an unused number and name")
				}
			}
			walk(om.Messages(), om.Enums())
		}
	}
	walk(o.file.Messages(), o.file.Enums())
	return d.out
}
