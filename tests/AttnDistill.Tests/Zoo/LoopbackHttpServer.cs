using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AttnDistill.Tests.Zoo;

/// <summary>
/// A minimal HTTP/1.1 file server on 127.0.0.1 (an ephemeral port) for download tests: serves one
/// body at any path, honours "Range: bytes=N-", can drop the first connection after a given byte
/// count, and records every request. It never connects anywhere.
/// </summary>
sealed class LoopbackHttpServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly byte[] _body;
    readonly CancellationTokenSource _stop = new();
    readonly List<string> _requests = new();
    int _dropsLeft;
    readonly int _dropAfter;

    public LoopbackHttpServer(byte[] body, int dropFirstAfterBytes = -1, int drops = 1)
    {
        _body = body;
        _dropAfter = dropFirstAfterBytes;
        _dropsLeft = dropFirstAfterBytes >= 0 ? drops : 0;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>"GET /path" plus " range=N-" when the request had a Range header.</summary>
    public IReadOnlyList<string> Requests { get { lock (_requests) return _requests.ToList(); } }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    void Serve(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII, false, 1024, leaveOpen: true);
            string? requestLine = reader.ReadLine();
            if (requestLine is null) return;
            long from = 0;
            string? rangeText = null;
            string? line;
            while (!string.IsNullOrEmpty(line = reader.ReadLine()))
            {
                if (line.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))
                {
                    rangeText = line["Range:".Length..].Trim();
                    from = long.Parse(rangeText["bytes=".Length..].TrimEnd('-'));
                }
            }
            string path = requestLine.Split(' ')[1];
            lock (_requests) _requests.Add($"GET {path}" + (rangeText is null ? "" : $" range={from}-"));
            bool drop = Interlocked.Decrement(ref _dropsLeft) >= 0;
            string header;
            if (path.Contains("missing", StringComparison.Ordinal))
            {
                header = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                stream.Write(Encoding.ASCII.GetBytes(header));
                return;
            }
            if (from >= _body.Length && rangeText is not null)
            {
                header = $"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{_body.Length}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                stream.Write(Encoding.ASCII.GetBytes(header));
                return;
            }
            long length = _body.Length - from;
            header = rangeText is null
                ? $"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
                : $"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{_body.Length - 1}/{_body.Length}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n";
            stream.Write(Encoding.ASCII.GetBytes(header));
            int send = drop ? (int)Math.Min(length, Math.Max(0, _dropAfter - from)) : (int)length;
            stream.Write(_body, (int)from, send);
            stream.Flush();
            if (drop) client.Client.LingerState = new LingerOption(true, 0);   // reset: the client sees a cut, not an end
        }
        catch (IOException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
