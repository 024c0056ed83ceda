// Group normalisation. Statistics are computed once per (image, group) into a small buffer
// (mean, 1/√(var+eps)); the normalisation itself is elementwise so it vectorises.

// stats[2·(n·G+g)] = (mean, rstd) over the C/G channels × spatial elements of the group.
kernel void group_norm_stats(global float *stats, global const float *x, int groups, int channels_per_group,
                             int spatial, float eps, int count) {
    int job = get_global_id(0);
    if (job >= count) return;
    int len = channels_per_group * spatial;
    global const float *g = x + (long)job * len;
    float sum = 0.0f;
    for (int i = 0; i < len; i++) sum += g[i];
    float mean = sum / (float)len;
    float squares = 0.0f;
    for (int i = 0; i < len; i++) { float d = g[i] - mean; squares += d * d; }
    stats[2 * job] = mean;
    stats[2 * job + 1] = rsqrt(squares / (float)len + eps);
}

kernel void group_norm_forward(global float *y, global const float *x, global const float *gamma,
                               global const float *beta, global const float *stats, int channels, int groups,
                               int spatial, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int plane = i / spatial;              // n·C + c
    int c = plane % channels;
    int job = (plane / channels) * groups + c / (channels / groups);
    y[i] = (x[i] - stats[2 * job]) * stats[2 * job + 1] * gamma[c] + beta[c];
}

// sums[2·job] = mean over the group of g = dy·gamma, sums[2·job+1] = mean of g·x̂.
kernel void group_norm_backward_sums(global float *sums, global const float *x, global const float *gamma,
                                     global const float *dy, global const float *stats, int groups,
                                     int channels_per_group, int spatial, int count) {
    int job = get_global_id(0);
    if (job >= count) return;
    int group = job % groups;
    long base = (long)job * channels_per_group * spatial;
    float mean = stats[2 * job], rstd = stats[2 * job + 1];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int cc = 0; cc < channels_per_group; cc++) {
        float gm = gamma[group * channels_per_group + cc];
        for (int p = 0; p < spatial; p++) {
            long i = base + cc * spatial + p;
            float g = dy[i] * gm;
            sum_g += g;
            sum_gx += g * (x[i] - mean) * rstd;
        }
    }
    float len = (float)(channels_per_group * spatial);
    sums[2 * job] = sum_g / len;
    sums[2 * job + 1] = sum_gx / len;
}

kernel void group_norm_backward_input(global float *dx, global const float *x, global const float *gamma,
                                      global const float *dy, global const float *stats, global const float *sums,
                                      int channels, int groups, int spatial, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int plane = i / spatial;
    int c = plane % channels;
    int job = (plane / channels) * groups + c / (channels / groups);
    float rstd = stats[2 * job + 1];
    float xhat = (x[i] - stats[2 * job]) * rstd;
    dx[i] = rstd * (dy[i] * gamma[c] - sums[2 * job] - xhat * sums[2 * job + 1]);
}

// dgamma[c] = Σ_{n,p} dy·x̂, dbeta[c] = Σ_{n,p} dy
kernel void group_norm_backward_affine(global float *dgamma, global float *dbeta, global const float *x,
                                       global const float *dy, global const float *stats, int batch, int channels,
                                       int groups, int spatial) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float sum_dy = 0.0f, sum_dyx = 0.0f;
    for (int n = 0; n < batch; n++) {
        int job = n * groups + c / (channels / groups);
        float mean = stats[2 * job], rstd = stats[2 * job + 1];
        long base = ((long)n * channels + c) * spatial;
        for (int p = 0; p < spatial; p++) {
            sum_dy += dy[base + p];
            sum_dyx += dy[base + p] * (x[base + p] - mean) * rstd;
        }
    }
    dgamma[c] = sum_dyx;
    dbeta[c] = sum_dy;
}
