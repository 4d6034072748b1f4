using System.Buffers.Binary;
using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace AttnDistill.Checkpoints;

/// <summary>
/// What a <see cref="RestrictedUnpickler"/> asks its host whenever the pickle would reach outside
/// plain data: naming a global, loading a persistent id (torch's tensor storages), calling,
/// instantiating or setting state. The host decides; whatever it does not allow it refuses by
/// throwing a <see cref="CheckpointFormatException"/>.
/// </summary>
internal interface IPickleHost
{
    /// <summary>GLOBAL / STACK_GLOBAL: a stand-in for module.name, or a refusal.</summary>
    object Global(string module, string name);
    /// <summary>BINPERSID: the object a persistent id stands for.</summary>
    object PersistentLoad(object? pid);
    /// <summary>REDUCE: callable(*args).</summary>
    object? Reduce(object? callable, object?[] args);
    /// <summary>NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args).</summary>
    object? NewObj(object? cls, object?[] args);
    /// <summary>BUILD: obj.__setstate__(state); returns the object left on the stack.</summary>
    object? Build(object? obj, object? state);
}

/// <summary>
/// A pickle reader (protocols 0-5, the opcodes torch.save and plain Python data use) that builds
/// only plain values itself: None, bool, int, float, str, bytes, tuple (<c>object?[]</c>), list
/// (<see cref="List{T}"/>), dict (<see cref="Hashtable"/>) and set (<see cref="HashSet{T}"/>).
/// Every other object goes through an <see cref="IPickleHost"/>, so nothing the file names is ever
/// run. The whole pickle is in memory and every length is checked against what is left of it, so
/// a corrupt file ends in a <see cref="CheckpointFormatException"/> after at most one pass over its
/// bytes, never in a crash, a hang or an allocation larger than the file.
/// </summary>
internal sealed class RestrictedUnpickler
{
    private readonly byte[] _data;
    private readonly string _name;
    private readonly IPickleHost _host;
    // As Python's unpickler: MARK moves the current stack aside (no copy) and starts a new one.
    private List<object?> _stack = new();
    private readonly Stack<List<object?>> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    private int _pos;

    public RestrictedUnpickler(byte[] data, string name, IPickleHost host)
    {
        _data = data;
        _name = name;
        _host = host;
    }

    /// <summary>Runs the pickle to its STOP opcode and returns the object it built.</summary>
    public object? Load()
    {
        while (true)
        {
            int at = _pos;
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    if (ReadByte() > 5) throw Corrupt(at, "pickle protocol above 5");
                    break;
                case 0x95: // FRAME: a length prefix only; the bytes follow inline.
                    ReadSpan(8);
                    break;
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Corrupt(at, $"STOP with {_stack.Count} values on the stack");
                    return _stack[0];

                case (byte)'(': // MARK
                    _marks.Push(_stack);
                    _stack = new List<object?>();
                    break;
                case (byte)'0': // POP
                    if (_stack.Count > 0) Pop(at);
                    else PopMark(at);
                    break;
                case (byte)'1': // POP_MARK
                    PopMark(at);
                    break;
                case (byte)'2': // DUP
                    Push(Peek(at));
                    break;

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;  // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push(BinaryPrimitives.ReadInt32LittleEndian(ReadSpan(4))); break; // BININT
                case (byte)'K': Push((int)ReadByte()); break;                                       // BININT1
                case (byte)'M': Push((int)BinaryPrimitives.ReadUInt16LittleEndian(ReadSpan(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break;                                       // LONG1
                case 0x8b: Push(ReadLong(ReadLength(4, at))); break;                                // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadSpan(8))); break;     // BINFLOAT
                case (byte)'I': Push(ParseTextInt(ReadLine(), at)); break;                          // INT
                case (byte)'L': Push(ParseTextInt(ReadLine().TrimEnd('L'), at)); break;             // LONG
                case (byte)'F': Push(ParseTextFloat(ReadLine(), at)); break;                        // FLOAT

                case (byte)'X': Push(ReadUtf8(ReadLength(4, at), at)); break;   // BINUNICODE
                case 0x8c: Push(ReadUtf8(ReadByte(), at)); break;                // SHORT_BINUNICODE
                case 0x8d: Push(ReadUtf8(ReadLength(8, at), at)); break;         // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadSpan(ReadLength(4, at)))); break; // BINSTRING (Python 2 str)
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadSpan(ReadByte()))); break;       // SHORT_BINSTRING
                case (byte)'B': Push(ReadSpan(ReadLength(4, at)).ToArray()); break;  // BINBYTES
                case (byte)'C': Push(ReadSpan(ReadByte()).ToArray()); break;         // SHORT_BINBYTES
                case 0x8e: Push(ReadSpan(ReadLength(8, at)).ToArray()); break;       // BINBYTES8
                case 0x96: Push(ReadSpan(ReadLength(8, at)).ToArray()); break;       // BYTEARRAY8

                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(PopMark(at).ToArray()); break;  // TUPLE
                case 0x85: Push(new[] { Pop(at) }); break;          // TUPLE1
                case 0x86: { var b = Pop(at); var a = Pop(at); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)']': Push(new List<object?>()); break;      // EMPTY_LIST
                case (byte)'l': Push(PopMark(at)); break;              // LIST
                case (byte)'}': Push(new Hashtable()); break;          // EMPTY_DICT
                case (byte)'d': Push(ToDict(PopMark(at), at)); break;  // DICT
                case 0x8f: Push(new HashSet<object?>()); break;        // EMPTY_SET
                case 0x91: Push(new HashSet<object?>(PopMark(at))); break; // FROZENSET

                case (byte)'a': // APPEND
                {
                    var item = Pop(at);
                    AsList(Peek(at), at).Add(item);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopMark(at);
                    AsList(Peek(at), at).AddRange(items);
                    break;
                }
                case 0x90: // ADDITEMS
                {
                    var items = PopMark(at);
                    if (Peek(at) is not HashSet<object?> set) throw Corrupt(at, "ADDITEMS on something that is not a set");
                    foreach (var i in items) set.Add(i);
                    break;
                }
                case (byte)'s': // SETITEM
                {
                    var value = Pop(at);
                    var key = Pop(at);
                    SetItem(Peek(at), key, value, at);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark(at);
                    if (items.Count % 2 != 0) throw Corrupt(at, "SETITEMS with an odd number of items");
                    var dict = Peek(at);
                    for (int i = 0; i < items.Count; i += 2) SetItem(dict, items[i], items[i + 1], at);
                    break;
                }

                case (byte)'p': Remember(ParseMemoIndex(ReadLine(), at), at); break; // PUT
                case (byte)'q': Remember(ReadByte(), at); break;                      // BINPUT
                case (byte)'r': Remember(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)), at); break; // LONG_BINPUT
                case 0x94: Remember(_memo.Count, at); break;                          // MEMOIZE
                case (byte)'g': Push(Recall(ParseMemoIndex(ReadLine(), at), at)); break; // GET
                case (byte)'h': Push(Recall(ReadByte(), at)); break;                     // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)), at)); break; // LONG_BINGET

                case (byte)'c': // GLOBAL
                {
                    string module = ReadLine(), name = ReadLine();
                    Push(_host.Global(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop(at);
                    var module = Pop(at);
                    if (module is not string m || name is not string n) throw Corrupt(at, "STACK_GLOBAL needs two strings");
                    Push(_host.Global(m, n));
                    break;
                }
                case (byte)'Q': // BINPERSID
                    Push(_host.PersistentLoad(Pop(at)));
                    break;
                case (byte)'R': // REDUCE
                {
                    var args = Pop(at);
                    var callable = Pop(at);
                    Push(_host.Reduce(callable, AsTuple(args, at, "REDUCE")));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop(at);
                    var cls = Pop(at);
                    Push(_host.NewObj(cls, AsTuple(args, at, "NEWOBJ")));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    var kwargs = Pop(at);
                    var args = Pop(at);
                    var cls = Pop(at);
                    if (kwargs is not Hashtable { Count: 0 }) throw Corrupt(at, "NEWOBJ_EX with keyword arguments");
                    Push(_host.NewObj(cls, AsTuple(args, at, "NEWOBJ_EX")));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop(at);
                    var obj = Pop(at);
                    Push(_host.Build(obj, state));
                    break;
                }

                case (byte)'S' or (byte)'V' or (byte)'P' or (byte)'i' or (byte)'o' or 0x82 or 0x83 or 0x84 or 0x97 or 0x98:
                    throw Corrupt(at, $"opcode 0x{op:x2} ('{(char)op}') is not used by torch.save and is not supported");
                default:
                    throw Corrupt(at, $"unknown opcode 0x{op:x2}");
            }
        }
    }

    private CheckpointFormatException Corrupt(int at, string what) =>
        new($"{_name}: corrupt or unsupported pickle at byte {at}: {what}.");

    private void Push(object? o) => _stack.Add(o);

    private object? Pop(int at)
    {
        if (_stack.Count == 0) throw Corrupt(at, "stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek(int at) => _stack.Count == 0 ? throw Corrupt(at, "stack underflow") : _stack[^1];

    /// <summary>The items pushed since the last MARK; the stack below the mark comes back.</summary>
    private List<object?> PopMark(int at)
    {
        if (_marks.Count == 0) throw Corrupt(at, "no MARK to pop to");
        var items = _stack;
        _stack = _marks.Pop();
        return items;
    }

    private void Remember(long index, int at)
    {
        if (_stack.Count == 0) throw Corrupt(at, "memo write with an empty stack");
        _memo[index] = _stack[^1];
    }

    private object? Recall(long index, int at) =>
        _memo.TryGetValue(index, out var o) ? o : throw Corrupt(at, $"memo entry {index} was never written");

    private byte ReadByte()
    {
        if (_pos >= _data.Length) throw Corrupt(_pos, "the pickle ends without STOP (truncated?)");
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> ReadSpan(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Corrupt(_pos, $"a length of {n} bytes runs past the end of the pickle ({_data.Length - _pos} left)");
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    /// <summary>A 4- or 8-byte little-endian length, checked against the bytes left.</summary>
    private long ReadLength(int width, int at)
    {
        ulong n = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)) : BinaryPrimitives.ReadUInt64LittleEndian(ReadSpan(8));
        if (n > (ulong)(_data.Length - _pos)) throw Corrupt(at, $"a length of {n} bytes runs past the end of the pickle ({_data.Length - _pos} left)");
        return (long)n;
    }

    private string ReadUtf8(long n, int at)
    {
        var bytes = ReadSpan(n);
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { throw Corrupt(at, "a string that is not valid UTF-8"); }
    }

    /// <summary>Text opcodes end at '\n'.</summary>
    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Corrupt(_pos, "a text argument without its end of line (truncated?)");
        string s = Encoding.Latin1.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    /// <summary>LONG1/LONG4: little-endian two's complement; int or long when it fits.</summary>
    private object ReadLong(long n)
    {
        var bytes = ReadSpan(n);
        if (n == 0) return 0L;
        var v = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;
    }

    private object ParseTextInt(string s, int at)
    {
        // Protocol 0 writes booleans as INT 01 / 00.
        if (s == "01") return true;
        if (s == "00") return false;
        if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
        if (s.Length <= 4096 && BigInteger.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var b)) return b;
        throw Corrupt(at, "a text integer that does not parse");
    }

    private double ParseTextFloat(string s, int at) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Corrupt(at, "a text float that does not parse");

    private long ParseMemoIndex(string s, int at) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? i : throw Corrupt(at, "a memo index that does not parse");

    private List<object?> AsList(object? o, int at) => o as List<object?> ?? throw Corrupt(at, $"append to a {TypeName(o)}, not a list");

    private object?[] AsTuple(object? o, int at, string op) => o as object?[] ?? throw Corrupt(at, $"{op} arguments are a {TypeName(o)}, not a tuple");

    private Hashtable ToDict(List<object?> items, int at)
    {
        if (items.Count % 2 != 0) throw Corrupt(at, "DICT with an odd number of items");
        var d = new Hashtable();
        for (int i = 0; i < items.Count; i += 2) SetItem(d, items[i], items[i + 1], at);
        return d;
    }

    private void SetItem(object? target, object? key, object? value, int at)
    {
        if (target is not Hashtable dict) throw Corrupt(at, $"set an item of a {TypeName(target)}, not a dict");
        if (key is null) throw Corrupt(at, "a dict key that is None");
        dict[key] = value;
    }

    internal static string TypeName(object? o) => o switch
    {
        null => "None",
        string => "str",
        object?[] => "tuple",
        List<object?> => "list",
        Hashtable => "dict",
        _ => o.GetType().Name,
    };
}
