using System.Buffers.Binary;
using System.IO.Compression;
using AttnDistill.Data;
using AttnDistill.Tests.Reliability;
using Xunit;

namespace AttnDistill.Tests.Data;

/// <summary>
/// 16-bit PNGs against PIL 9.4's <c>Image.open(f).convert("RGB")</c>. The files are in
/// tests/fixtures/png16, made by make_png16_expectations.py there, which also prints the values
/// below (hex of PIL's RGB bytes, or PIL's error): the tests need no Python.
/// </summary>
public class Png16DecoderTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "png16", name);

    /// <summary>PIL's convert("RGB") of each readable fixture: width, height, the RGB bytes in hex.</summary>
    static readonly Dictionary<string, (int W, int H, string Rgb)> Pil = new()
    {
        // PIL mode "I"
        ["gray16_values.png"] = (6, 1,
            "000000646464FFFFFFFFFFFFFFFFFFFFFFFF"),
        // PIL mode "I"
        ["gray16_filters.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFFD4D4D4FFFFFFFFFFFFBDBDBDF0F0F0C9C9C9747474767676B4B4B4020202696969F6F6F6D3D3D3D4D4D4"
            + "A9A9A97575752E2E2E242424E7E7E77F7F7F5E5E5E232323828282969696FEFEFEFFFFFFAFAFAF"),
        // PIL mode "I"
        ["gray16_adam7.png"] = (13, 11,
            "1C1C1CB8B8B8808080FFFFFFBEBEBE121212FFFFFFD8D8D87878785A5A5A454545E4E4E4FFFFFFFFFFFF7F7F7FFFFFFF"
            + "FFFFFFF9F9F9FFFFFFFFFFFFFFFFFFBBBBBB0404041E1E1E7474748888881E1E1E1D1D1D5858582A2A2A0C0C0CBFBFBF"
            + "505050C5C5C54D4D4DB0B0B0ACACAC9D9D9D878787F2F2F2A1A1A1FFFFFFF9F9F9AEAEAED6D6D61D1D1D434343313131"
            + "101010E3E3E3292929838383020202C4C4C43838383434345D5D5DFFFFFFFFFFFFFFFFFFD9D9D9D6D6D6F5F5F53C3C3C"
            + "BEBEBED3D3D39C9C9CFFFFFFF8F8F82525250C0C0CFFFFFF626262C8C8C8B0B0B0828282FFFFFF6C6C6CFFFFFFFFFFFF"
            + "484848FFFFFFFFFFFFFFFFFF848484313131FFFFFF222222FFFFFFFFFFFF5858584F4F4FA8A8A8FFFFFF787878FFFFFF"
            + "0F0F0FFFFFFF8C8C8CD3D3D3A9A9A9FFFFFFFFFFFFEEEEEE080808C5C5C5C7C7C7626262FFFFFFFFFFFF686868010101"
            + "FFFFFF888888282828CFCFCFFFFFFFC3C3C34F4F4FEFEFEFFFFFFFFFFFFF4444442727279B9B9BC9C9C9C8C8C89D9D9D"
            + "EAEAEA1F1F1FC2C2C2A3A3A3ABABABFFFFFF959595E2E2E2A7A7A7797979BFBFBF474747FFFFFFAFAFAFCCCCCC"),
        // PIL mode "I"
        ["gray16_trns.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFFD4D4D4FFFFFFFFFFFFBDBDBDF0F0F0C9C9C9747474767676B4B4B4020202696969F6F6F6D3D3D3D4D4D4"
            + "A9A9A97575752E2E2E242424E7E7E77F7F7F5E5E5E232323828282969696FEFEFEFFFFFFAFAFAF"),
        // PIL mode "RGBA"
        ["la16_filters.png"] = (7, 5,
            "797979BDBDBD212121F0F0F0777777F0F0F0CBCBCB767676C7C7C72020201515150F0F0FF2F2F2DADADAE3E3E3BBBBBB"
            + "121212FDFDFD8484849A9A9AC5C5C5D0D0D0ACACAC8F8F8FA7A7A76C6C6C919191202020F7F7F7B0B0B0D2D2D20A0A0A"
            + "DADADA3C3C3C171717"),
        // PIL mode "RGB"
        ["rgb16_filters.png"] = (7, 5,
            "789B34CAF54F2E220ACD941E71B88D5836866D0D858B63549E94BE2CACC67F5B7EF28F2D9903959F63D3D893DCE75277"
            + "9C84162917EC8FF1AF4A6422D367E18D5EB6DFA465A5331F758E793EA95A94EB0D15B62A92A709A593A44ED2279662E3"
            + "954580C351A904BA16"),
        // PIL mode "RGBA"
        ["rgba16_filters.png"] = (7, 5,
            "82B70E7F1A50BEF07E347F06D08F5D5124474043006B6E5494A0655D64C40BB8D44A87219A01AD9EB59CA15EF65A1D83"
            + "B7CE09BBC004175C647DECB080EC379712DD6AAEB9AE8D2FA29C5A4C9EF71829CF79B080D74A1CFCAB6A43D336DEBE4C"
            + "D7964856E8F9F58C95"),
        // PIL mode "RGBA"
        ["rgba16_adam7.png"] = (13, 11,
            "29F885004AF0A30B8B65D330872DD92FB9D1E33064311766F9630E7DDC9B3D2D65899F64F77246066056AA9CBFC79440"
            + "1B5ED831E17DE4E4C2DAF19B2B6288F958093F80B883E7A8D2D7F8F3F5FBC1FE9CA5BB5388A3CB5094031D5D0FBDB9FE"
            + "624F89D8FB267633BD4A7CA2133135F4EC23412A52E7FF0A60E1F5E48DF495BA92112A8D8CF2DCBE102B7A1058BD101A"
            + "DDAF273ACC45FD2641B30F5F5E904D72714053A27BC560A6E104CB77BE8B4C5444261F06F11E3ABC101ED07396F1271E"
            + "E03D39190FD982E3766D8E06A92F10BB3B73B8AEDFB0470FAC22F8ED872C7543405D7CC4F58A81991062355A37523D4D"
            + "F2F8F0C64FEAACD5804492BD72029C2AD07663C2D24B19F9A8C78B8543154F3A2C3F6EB3517D597340F53845E9BE4AAA"
            + "228C000FF5E91F058CC4AC34484BBDCF094DE4BF06F587243DCC65E0A982968BE77F01FD5712A46B9B618E1D8BBF6F57"
            + "2EB65E5DF471C4B73EDC1B6889701C8188B8DABD30538E1F1D2839E0DC2E86B400889EB1CE273AFDE4837B071A4E7096"
            + "3686450FCC836C238D454E326FA7D6F9E7A5625A3947C872EE8C620DD07C3D11A1FF81DF9BB8BED25C9CF17B35"),
        // PIL mode "RGB"; every row Paeth (make_png16_expectations.py)
        ["rgb16_paeth.png"] = (8, 6,
            "80A8D07AA2CA749CC46E96BE6890B8628AB25C84AC567EA683ABD37DA5CD779FC77199C16B93BB658DB55F87AF5981A9"
            + "86AED680A8D07AA2CA749CC46E96BE6890B8628AB25C84AC89B1D983ABD37DA5CD779FC77199C16B93BB658DB55F87AF"
            + "8CB4DC86AED680A8D07AA2CA749CC46E96BE6890B8628AB28FB7DF89B1D983ABD37DA5CD779FC77199C16B93BB658DB5"),
        // PIL mode "I"
        ["bad_idat_crc.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFFD4D4D4FFFFFFFFFFFFBDBDBDF0F0F0C9C9C9747474767676B4B4B4020202696969F6F6F6D3D3D3D4D4D4"
            + "A9A9A97575752E2E2E242424E7E7E77F7F7F5E5E5E232323828282969696FEFEFEFFFFFFAFAFAF"),
        // PIL mode "I"
        ["no_iend.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFFD4D4D4FFFFFFFFFFFFBDBDBDF0F0F0C9C9C9747474767676B4B4B4020202696969F6F6F6D3D3D3D4D4D4"
            + "A9A9A97575752E2E2E242424E7E7E77F7F7F5E5E5E232323828282969696FEFEFEFFFFFFAFAFAF"),
        // PIL mode "I"
        ["split_idat.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFFD4D4D4FFFFFFFFFFFFBDBDBDF0F0F0C9C9C9747474767676B4B4B4020202696969F6F6F6D3D3D3D4D4D4"
            + "A9A9A97575752E2E2E242424E7E7E77F7F7F5E5E5E232323828282969696FEFEFEFFFFFFAFAFAF"),
        // PIL mode "I"
        ["stream_ends_after_row.png"] = (9, 5,
            "444444FFFFFFF1F1F1303030C7C7C7E4E4E43434340B0B0BFFFFFFFFFFFFFDFDFDFFFFFFFFFFFF333333FFFFFF616161"
            + "FFFFFFFFFFFF000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            + "000000000000000000000000000000000000000000000000000000000000000000000000000000"),
    };

    public static TheoryData<string> Readable => new(Pil.Keys);

    [Theory]
    [MemberData(nameof(Readable))]
    public void DecodesAsPilConvertRgb(string name)
    {
        var (w, h, hex) = Pil[name];
        var bytes = File.ReadAllBytes(Fixture(name));
        foreach (var img in new[] { ImageDecoder.Decode(bytes, name), ImageDecoder.DecodeWithSkia(bytes, name), ImageDecoder.DecodeFile(Fixture(name)) })
        {
            Assert.Equal((w, h, 3), (img.Width, img.Height, img.Channels));
            Assert.Equal(hex, Convert.ToHexString(img.Pixels));
        }
        Assert.Equal((w, h), ImageDecoder.TryReadSize(Fixture(name)));
    }

    [Fact]
    public void GrayIsClippedWhileTheOtherTypesKeepTheHighByte()
    {
        // The same PIL facts the fixtures rest on, in three pixels each: gray 0x0100 -> 255 (mode "I"
        // clipped), but gray+alpha 0x0100 -> 1 ("LA;16B"), RGB 0x00FF -> 0 ("RGB;16B").
        static byte[] Row(params ushort[] v)
        {
            var row = new byte[1 + 2 * v.Length];
            for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(1 + 2 * i), v[i]);
            return row;
        }
        Assert.Equal("FFFFFFC8C8C8FFFFFF", Convert.ToHexString(ImageDecoder.Decode(HostileFiles.Png(3, 1, 16, 0, Row(0x0100, 0x00C8, 0xFFFF)), "g").Pixels));
        Assert.Equal("010101000000", Convert.ToHexString(ImageDecoder.Decode(HostileFiles.Png(2, 1, 16, 4, Row(0x0100, 0xFFFF, 0x00C8, 0xFFFF)), "la").Pixels));
        Assert.Equal("0001FF", Convert.ToHexString(ImageDecoder.Decode(HostileFiles.Png(1, 1, 16, 2, Row(0x00FF, 0x01FF, 0xFFFF)), "rgb").Pixels));
        Assert.Equal("0001FF", Convert.ToHexString(ImageDecoder.Decode(HostileFiles.Png(1, 1, 16, 6, Row(0x00FF, 0x01FF, 0xFFFF, 0)), "rgba").Pixels));
    }

    [Theory]
    [InlineData("gray16_filters.png", 2)]
    [InlineData("la16_filters.png", 4)]
    [InlineData("rgb16_filters.png", 6)]
    [InlineData("rgba16_filters.png", 8)]
    [InlineData("gray16_adam7.png", 2)]
    [InlineData("rgba16_adam7.png", 8)]
    public void TheFixturesUseAllFiveFilterTypes(string name, int bytesPerPixel)
    {
        // The PIL comparisons above cover the Sub, Up, Average and Paeth filters only if the files
        // use them: read each row's filter byte back, walking the Adam7 passes where interlaced.
        var png = File.ReadAllBytes(Fixture(name));
        int w = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), h = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        int idat = png.AsSpan().IndexOf("IDAT"u8);
        int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(idat - 4));
        using var z = new ZLibStream(new MemoryStream(png, idat + 4, length), CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var passes = png[28] != 0
            ? new[] { (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2) }
            : new[] { (0, 0, 1, 1) };
        var filters = new HashSet<byte>();
        int at = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = w > x0 ? (w - x0 + dx - 1) / dx : 0, ph = h > y0 ? (h - y0 + dy - 1) / dy : 0;
            if (pw == 0) continue;
            for (int r = 0; r < ph; r++, at += 1 + pw * bytesPerPixel) filters.Add(raw.GetBuffer()[at]);
        }
        Assert.Equal(raw.Length, at);
        Assert.Equal(new byte[] { 0, 1, 2, 3, 4 }, filters.Order().ToArray());
    }

    [Theory]
    [InlineData("truncated_idat.png")] // PIL: OSError: image file is truncated
    [InlineData("bad_ihdr_crc.png")] // PIL: UnidentifiedImageError: cannot identify image file
    [InlineData("idat_interrupted.png")] // PIL: OSError: image file is truncated (0 bytes not processed)
    [InlineData("bad_adler.png")] // PIL: OSError: broken data stream when reading image file
    [InlineData("no_idat.png")] // PIL: OSError: cannot load this image
    [InlineData("bad_filter_type.png")] // PIL: OSError: unrecognized data stream contents when reading image file
    [InlineData("stream_ends_mid_row.png")] // PIL: OSError: image file is truncated (0 bytes not processed)
    [InlineData("palette16.png")] // PIL: UnidentifiedImageError: cannot identify image file
    public void BrokenFilesPilRefusesAreUnreadable(string name)
    {
        // InvalidDataException is the data loader's unreadable-image path (skipped, counted, named).
        var bytes = File.ReadAllBytes(Fixture(name));
        var ex = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(bytes, name));
        Assert.Contains(name, ex.Message);
        Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeFile(Fixture(name)));
    }

    [Fact]
    public void EveryTruncationOfA16BitPngIsReadableOrUnreadableNeverAnotherException()
    {
        foreach (string name in new[] { "gray16_filters.png", "rgba16_adam7.png" })
        {
            var png = File.ReadAllBytes(Fixture(name));
            for (int n = 1; n < png.Length; n++)
            {
                try { ImageDecoder.Decode(png.AsSpan(0, n), name); }
                catch (InvalidDataException) { }
            }
            // Every single flipped byte too (a CRC, a length, a zlib byte, the filter bytes).
            for (int i = 8; i < png.Length; i++)
            {
                var bad = (byte[])png.Clone();
                bad[i] ^= 0x5A;
                try { ImageDecoder.Decode(bad, name); }
                catch (InvalidDataException) { }
                catch (ImageTooLargeException) when (i is >= 16 and < 24) { } // a flipped width or height may pass the budget
            }
        }
    }

    [Fact]
    public void AHeaderThatLiesAboutItsSizeIsRefusedBeforeAnyPixelMemory()
    {
        // A few dozen bytes claiming 60000 x 60000 16-bit RGBA (29 GB as 16-bit): refused from the
        // IHDR, as PIL's DecompressionBombError, whatever --max-image-pixels is (over the hard limit).
        string dir = DataTestUtil.TempDir("png16-bomb");
        string path = Path.Combine(dir, "bomb.png");
        File.WriteAllBytes(path, HostileFiles.Png(60000, 60000, 16, 6, new byte[1 + 8]));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<ImageTooLargeException>(() => ImageDecoder.DecodeFile(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated pixel memory before refusing");
        Assert.Contains(path, ex.Message);
        Assert.Contains("60000x60000", ex.Message);
        Assert.Throws<ImageTooLargeException>(() => ImageDecoder.TryReadSize(path));
        // Past what a PNG can hold (2^31 - 1): refused the same way, not an overflow.
        Assert.Throws<ImageTooLargeException>(() => ImageDecoder.Decode(HostileFiles.Png(-1, -1, 16, 0, new byte[3]), "huge.png"));
    }
}
