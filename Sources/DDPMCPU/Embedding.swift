import DDPMCore

// Reference ops of class conditioning: an embedding table looked up by class index (torch's
// nn.Embedding, diffusers' class_embedding) and its gradient.

/// The row index stored as a float; a programmer error (the data loader checks labels) if outside 0..<rows.
@inline(__always) func rowIndex(_ index: Float, rows: Int) -> Int {
    let r = Int(index)
    precondition(Float(r) == index && r >= 0 && r < rows, "embedding index \(index) is not a row in 0..<\(rows)")
    return r
}

/// y[n, d] = table[indices[n], d]     table [rows, dim], indices [n], y [n, dim]
func embeddingForward(_ y: UnsafeMutablePointer<Float>, _ table: UnsafePointer<Float>, _ indices: UnsafePointer<Float>,
                      rows: Int, dim: Int, n: Int) {
    elementwise(y, count: n * dim) { i in
        let (image, d) = i.quotientAndRemainder(dividingBy: dim)
        return table[rowIndex(indices[image], rows: rows) * dim + d]
    }
}

/// dtable[k, d] = Σ_{n: indices[n] = k} dy[n, d], summed in increasing n     dy [n, dim], dtable [rows, dim]
func embeddingBackward(_ dtable: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ indices: UnsafePointer<Float>,
                       rows: Int, dim: Int, n: Int) {
    let index = (0..<n).map { rowIndex(indices[$0], rows: rows) }
    elementwise(dtable, count: rows * dim) { i in
        let (k, d) = i.quotientAndRemainder(dividingBy: dim)
        var sum: Float = 0
        for image in 0..<n where index[image] == k { sum += dy[image * dim + d] }
        return sum
    }
}
