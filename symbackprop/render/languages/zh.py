# ruff: noqa: E501  (a phrase book: one sentence per line reads and greps best)
"""The Chinese phrase book: every English sentence of the LaTeX documents, masked.

Keys are the English sentences with their variable parts as ``<0>``, ``<1>``, ...
(inline math, numbers and sizes, ``\\texttt{...}``, ``\\ref{...}``, layer names, in the
order they appear); values are the Chinese sentences with the same placeholders,
each used once, placed where Chinese grammar needs them.  The words are those of a
Chinese deep-learning course.  To add a sentence, run the test
``tests/test_language_zh.py``: its failure lists the missing keys ready to paste.
"""

from __future__ import annotations

import re

#: A sentence with one of these characters is Chinese already (CJK ideographs, CJK and
#: full-width punctuation).
SCRIPT = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")

#: Between the translated parts of a list ("kernel 3x3, stride 2").
LIST_SEPARATOR = "，"

#: Between the translated parts of a note beside a sum ("4 elements; in 9 outputs").
CLAUSE_SEPARATOR = "；"


def preamble(text: str) -> str:
    """The English preamble made to typeset Chinese with xelatex: ctex instead of the
    T1 font encoding (xelatex's fontspec sets Latin Modern itself)."""
    if "{ctex}" in text:
        return text  # translated already
    text = text.replace("\\usepackage[T1]{fontenc}\n", "")
    text = text.replace("\\usepackage{lmodern}\n", "")
    # Right after \documentclass, whatever its options.
    return re.sub(r"^(\\documentclass\b[^\n]*\n)", lambda match: match.group(1)
                  + "\\usepackage[UTF8]{ctex}\n", text, count=1, flags=re.M)


#: Whole sentences, headings, captions and table cells.
PHRASES: dict[str, str] = {
    # -- titles and headings
    "Backpropagation through a convolution, element by element": "卷积的反向传播：逐元素推导",
    "Backpropagation through max pooling, element by element": "最大池化的反向传播：逐元素推导",
    "Backpropagation through average pooling, element by element": "平均池化的反向传播：逐元素推导",
    "Backpropagation through a <0>-D transposed convolution, element by element":
        "<0> 维转置卷积的反向传播：逐元素推导",
    "Backpropagation through spatial batch normalisation, element by element":
        "空间批归一化的反向传播：逐元素推导",
    "Backpropagation through a chain of layers, element by element": "多层网络的反向传播：逐元素推导",
    "The layer": "本层",
    "Output size.": "输出尺寸。",
    "Forward pass": "前向传播",
    "Backward pass": "反向传播",
    "Backward pass, element by element": "反向传播：逐元素",
    "Input <0>": "输入 <0>",
    "Kernel <0>": "卷积核 <0>",
    "Weight <0>": "权重 <0>",
    "Bias <0>": "偏置 <0>",
    "Scale <0> (<1>)": "缩放 <0>（<1>）",
    "Shift <0> (<1>)": "平移 <0>（<1>）",
    "The general rules": "一般规则",
    "The rule": "规则",
    "The rule:": "规则：",
    "Input gradient: a full correlation with the rotated kernel": "输入梯度：与旋转后的卷积核做全互相关",
    "Kernel gradient: the input correlated with the upstream gradient": "卷积核梯度：输入与上游梯度的互相关",
    "Bias gradient: a sum": "偏置梯度：求和",
    "The matrix view": "矩阵视角",
    "Cost": "计算量",
    "Closed forms": "闭式解",
    "The convolution it is the transpose of": "与之互为转置的卷积",
    "Through the activation before it": "经过前一层的激活函数",
    "The computational graph": "计算图",
    "The backward walk, node by node": "逐节点的反向计算",
    "The chain": "网络结构",
    "Backward, one layer boundary at a time": "反向传播：逐层传递",
    "Forward.": "前向。",
    "Backward.": "反向。",
    "Layer <0>: <1>": "第 <0> 层：<1>",
    # -- tables
    "array": "数组",
    "shape": "形状",
    "in general": "一般形式",
    "meaning": "含义",
    "input": "输入",
    "output": "输出",
    "the input": "输入",
    "kernel (weights)": "卷积核（权重）",
    "bias, one per output channel": "偏置，每个输出通道一个",
    "upstream gradient <0>": "上游梯度 <0>",
    "the output and the upstream gradient <0>": "输出与上游梯度 <0>",
    "the weight": "权重",
    "the bias": "偏置",
    "<0>, PyTorch's <1>": "<0>，即 PyTorch 的 <1>",
    "channel <0>, row <1> and column <2> of the input": "输入的第 <0> 通道、第 <1> 行、第 <2> 列",
    "output channel <0>, input channel <1>, row <2> and column <3> of the kernel":
        "卷积核的第 <0> 输出通道、第 <1> 输入通道、第 <2> 行、第 <3> 列",
    "output channel <0>, row <1> and column <2> of the output": "输出的第 <0> 输出通道、第 <1> 行、第 <2> 列",
    "bias of output channel <0>": "第 <0> 输出通道的偏置",
    "quantity": "量",
    "formula": "公式",
    "this layer": "本层",
    "Forward multiply-adds per sample": "每个样本的前向乘加次数",
    "of them with a padding zero": "其中乘以填充零的",
    "Backward <0>, multiply-adds": "反向 <0> 的乘加次数",
    "as forward": "同前向",
    "Backward <0>, additions": "反向 <0> 的加法次数",
    "Output <0> per sample, values": "每个样本的输出 <0>，数值个数",
    "Input <0> kept for the backward pass": "为反向传播保存的输入 <0>",
    "<0> per sample": "每个样本 <0>",
    "Parameters": "参数",
    "layer": "层",
    "parameters": "参数",
    "the mean": "均值",
    "the centred input": "中心化的输入",
    "the biased variance (divided by <0>)": "有偏方差（除以 <0>）",
    "the inverse deviation": "标准差的倒数",
    "the normalised input": "归一化的输入",
    "scale and shift": "缩放与平移",
    "<0> is added to every <1>": "<0> 加到每个 <1> 上",
    "<0> multiplies every <1>": "<0> 乘以每个 <1>",
    "<0> scales every <1> of the group": "<0> 缩放该组的每个 <1>",
    "<0> feeds <1> and <2>: two paths add": "<0> 同时流向 <1> 与 <2>：两条路径的梯度相加",
    # -- figures
    "upsample": "上采样",
    "pooling": "池化",
    "forward": "前向",
    "backward": "反向",
    "<0>, shaped like the input <1>": "<0>，形状与输入 <1> 相同",
    "The cells <0> reads: each highlighted input is multiplied by the kernel element under it and the products are added.":
        "<0> 读取的单元格（感受野）：每个高亮的输入乘以其下方的卷积核元素，再把乘积相加。",
    "Grey cells are the padding (zeros).": "灰色单元格是填充（零）。",
    "Figure~<0> shows which cells one output reads.": "图~<0> 画出了一个输出读取的单元格。",
    "The backward pass as a scatter: <0> times each kernel element is added into the cell that kernel element met in the forward pass (a table shaped like the padded input, <1> standing for <2>).":
        "把反向传播看作散射：<0> 乘以每个卷积核元素，加到该元素在前向传播中对应的单元格里（表格的形状与填充后的输入相同，<1> 表示 <2>）。",
    "What lands on the padding (grey) is stripped at the end: the padding is not an input.":
        "落在填充（灰色）上的值最后被去掉：填充不是输入。",
    "The same sums as a full correlation: <0> puts <1> zeros (dotted) between the elements of <2>, <3> adds the kernel's reach around it (grey), and the kernel turned half a turn slides over it; under it here, the window of <4>.":
        "把同样的求和写成全互相关：<0> 在 <2> 的元素之间插入 <1> 个零（虚线），<3> 在四周补上卷积核所能覆盖的范围（灰色），旋转 180 度的卷积核在其上滑动；图中卷积核下方是 <4> 的窗口。",
    "The upsample of max pooling: each window (outlined in the colour of its <0> element) sends its whole <1> to one cell, the window's first maximum.":
        "最大池化的上采样：每个窗口（用其 <0> 元素的颜色框出）把整个 <1> 送到一个单元格，即窗口中的第一个最大值。",
    "A cell lists the elements of <0> it can receive: it receives one when it is that window's <1> (the indicator <2> of the sums), so of each window exactly one cell does and the others receive <3>.":
        "每个单元格列出它可能收到的 <0> 元素：当它是该窗口的 <1>（即求和中的指示函数 <2>）时才收到，因此每个窗口恰有一个单元格收到，其余单元格收到 <3>。",
    "The upsample of average pooling: every position of a window (outlined in the colour of its <0> element) receives the same share of it, <1>, the window's element divided by the window's <2> positions (a cell lists the elements of <3> it receives a share of); where windows overlap, the shares add up.":
        "平均池化的上采样：窗口（用其 <0> 元素的颜色框出）中的每个位置收到相同的一份 <1>，即该窗口的元素除以窗口的 <2> 个位置（每个单元格列出它分得的 <3> 元素）；窗口重叠处各份相加。",
    "The pooling and the activation before it: forward along the top, the error terms back along the bottom.":
        "池化层与其前面的激活函数：上方为前向，下方为误差项的反向传递。",
    "The forward pass as a scatter: <0> times each kernel element is added into the output at <1> (the table is the output map of the first channel, widened to where the scatter reaches).":
        "把前向传播看作散射：<0> 乘以每个卷积核元素，加到输出的 <1> 处（表格是第一个通道的输出特征图，扩展到散射所及的范围）。",
    "What lands outside the output (grey) is cropped: that is the padding.": "落在输出之外（灰色）的值被裁掉：这就是填充。",
    "Every input element does the same, shifted by the stride.": "每个输入元素都这样做，位置按步幅平移。",
    "Figure~<0> draws the scatter of one input element.": "图~<0> 画出了一个输入元素的散射。",
    # -- the layer
    "The layer computes the cross-correlation of its input with a kernel, plus a bias, as every deep-learning library does (a ``convolution'' in the course notes).":
        "本层计算输入与卷积核的互相关，再加上偏置，与各深度学习框架一致（课程讲义中称为“卷积”）。",
    "Its arrays and their shapes for this instance:": "本例中的数组及其形状：",
    "Indices start at <0> as in the textbook (<1> gives Python's).": "下标与教材一致，从 <0> 开始（<1> 改用 Python 的下标）。",
    "A batch or channel index is written only when that dimension has more than one value, as a superscript in parentheses; row and column are the subscript.":
        "批次或通道下标只在该维度多于一个取值时写出，记为括号中的上标；行和列记为下标。",
    "With stride <0>, padding <1> and dilation <2>, the output has": "步幅为 <0>、填充为 <1>、膨胀为 <2> 时，输出尺寸为",
    "This is the textbook's <0>.": "这就是教材中的 <0>。",
    "One mean <0> and one variance <1> for each channel, over the batch and both spatial axes: <2> values share them.":
        "每个通道在批次和两个空间维度上计算一个均值 <0> 和一个方差 <1>：共 <2> 个值共享它们。",
    "The variance is the \\emph{biased} one, divided by <0> (not <1>), and <2>.":
        "方差为\\emph{有偏}方差，除以 <0>（而非 <1>），且 <2>。",
    "For one group of <0> values <1>:": "对一组 <0> 个值 <1>：",
    "The statistics of each group, written out:": "每组的统计量，逐项写出：",
    "Every output, written with them:": "用它们写出每个输出：",
    # -- forward
    "Each output element is a sum of products of kernel elements and input elements:": "每个输出元素都是卷积核元素与输入元素乘积之和：",
    "where <0> is <1> with <2> zero row added above, <3> below, <4> zero column on the left and <5> on the right (so <6>).":
        "其中 <0> 是 <1> 上方补 <2> 行零、下方补 <3> 行、左侧补 <4> 列零、右侧补 <5> 列后的结果（因此 <6>）。",
    "Written out for every output, with the products that fall on the padding shown in grey as <0> (they add nothing):":
        "逐个写出每个输出，落在填充上的乘积以灰色的 <0> 表示（它们贡献为零）：",
    "Written out for every output:": "逐个写出每个输出：",
    "Written out for every output: <0> has <1> elements, more than the <2> this page lists in full: shown are <3> representative ones, the corners, the middle of each edge and the centre of each map.":
        "逐个写出输出：<0> 有 <1> 个元素，超过本页完整列出的上限 <2> 个，这里只给出 <3> 个代表元素：每张特征图的四角、各边中点和中心。",
    # -- backward
    "SymPy differentiated the loss <0>, where <1> is the upstream gradient <2> that the next layer hands back (method: <3>).":
        "SymPy 对损失 <0> 求导，其中 <1> 是下一层传回的上游梯度 <2>（方法：<3>）。",
    "SymPy differentiated <0> (method <1>).": "SymPy 对 <0> 求导（方法 <1>）。",
    "SymPy differentiated <0> (method <1>), through the mean and the variance.": "SymPy 经由均值和方差对 <0> 求导（方法 <1>）。",
    "SymPy differentiated <0> layer by layer (method <1>); each error term is written with the next one:":
        "SymPy 逐层对 <0> 求导（方法 <1>）；每个误差项都用后一层的误差项表示：",
    "An element influences the loss only through the outputs it feeds, so by the chain rule":
        "一个元素只通过它参与计算的输出影响损失，因此由链式法则",
    "and <0> is the kernel element that multiplies the input element in that output.":
        "而 <0> 就是在该输出中与此输入元素相乘的卷积核元素。",
    "The note on the right of each line names the outputs (equivalently, the factors <0> in the sum).":
        "每行右侧的注释给出这些输出（即求和中的因子 <0>）。",
    "An input element feeds the outputs whose window covers it, each time multiplied by a different kernel element.":
        "一个输入元素参与窗口覆盖它的所有输出，每次乘以不同的卷积核元素。",
    "Read the other way round (Figure~<0>), each upstream element is added back into every cell it came from, times the kernel element that met it.":
        "反过来看（图~<0>），每个上游梯度元素乘以与之相遇的卷积核元素，加回到它来自的每个单元格。",
    "<0> has <1> elements, more than the <2> this page lists in full: shown are <3> representative ones, the corners, the middle of each edge and the centre of each map, for the first and last of each batch and channel index.":
        "<0> 有 <1> 个元素，超过本页完整列出的上限 <2> 个，这里只给出 <3> 个代表元素：每张特征图的四角、各边中点和中心，批次和通道下标各取第一个和最后一个。",
    "<0> has <1> elements, more than the <2> this page lists in full: shown are <3> representative ones, the corners, the middle of each edge and the centre of each map.":
        "<0> 有 <1> 个元素，超过本页完整列出的上限 <2> 个，这里只给出 <3> 个代表元素：每张特征图的四角、各边中点和中心。",
    "Every other element follows the same pattern (and the rules of the next sections hold for all of them).":
        "其余元素遵循相同的模式（后面各节的规则对所有元素都成立）。",
    "A kernel element multiplies one input element in every output of its channel:": "一个卷积核元素在其通道的每个输出中乘以一个输入元素：",
    "so its gradient pairs each <0> with the input element the kernel element met there; the outputs where it met the padding contribute nothing.":
        "因此它的梯度把每个 <0> 与该卷积核元素在那里遇到的输入元素配对相乘；遇到填充的输出贡献为零。",
    "The bias is added to every output of its channel, with derivative <0>.": "偏置加到其通道的每个输出上，导数为 <0>。",
    "Sums of more than <0> terms show their first and last terms.": "超过 <0> 项的求和只显示开头和末尾几项。",
    # -- rules
    "The sums above follow three rules that hold for every size; here they are with this layer's numbers.":
        "上面的求和遵循三条对任意尺寸都成立的规则；下面代入本层的数值写出。",
    "Notation: <0> inserts <1> zeros between neighbouring rows and columns, <2> adds zero rows and columns (top, bottom, left, right), <3> turns a map by <4> and <5> is the (valid) cross-correlation of the forward pass.":
        "记号：<0> 在相邻的行与列之间插入 <1> 个零，<2> 补零行和零列（上、下、左、右），<3> 把特征图旋转 <4>，<5> 是前向传播中的（valid）互相关。",
    "Undo the stride: insert <0> zero row between the rows of <1> and <2> zero column between its columns: the <3> map becomes <4>.":
        "撤销步幅：在 <1> 的相邻行之间插入 <0> 行零，相邻列之间插入 <2> 列零：<3> 的特征图变为 <4>。",
    "Pad the result with zeros (a negative number crops instead), where <0> are the rows and columns the forward pass never read (here <1> and <2>):":
        "对结果补零（负数表示裁剪），其中 <0> 是前向传播从未读取的行数和列数（这里为 <1> 和 <2>）：",
    "For the first map:": "第一张特征图：",
    "For the first element:": "第一个元素：",
    "Rotate each kernel map by <0> (flip rows and columns) and swap the roles of its channels: the gradient of input channel <1> collects the kernels <2> of every output channel <3> that reads it:":
        "把每个卷积核旋转 <0>（行、列都翻转），并交换其通道的角色：输入通道 <1> 的梯度汇集所有读取它的输出通道 <3> 的卷积核 <2>：",
    "Cross-correlate the padded map with the rotated kernel, and sum over output channels: the result is <0>, the size of <1>.":
        "把填充后的特征图与旋转后的卷积核做互相关，并对输出通道求和：结果为 <0>，与 <1> 的尺寸相同。",
    "\\textbf{Verified:} SymPy expanded all <0> elements of this closed form and each is exactly the element-wise sum of Section~<1>.":
        "\\textbf{已验证：}SymPy 展开了该闭式解的全部 <0> 个元素，每个都与第~<1>~节的逐元素求和完全相同。",
    "\\textbf{Verified:} SymPy expanded the rule for all <0> input elements and each is exactly the element-wise sum of Section~<1>.":
        "\\textbf{已验证：}SymPy 对全部 <0> 个输入元素展开了该规则，每个都与第~<1>~节的逐元素求和完全相同。",
    "\\textbf{Verified} on all <0> elements of this instance.": "在本例的全部 <0> 个元素上\\textbf{已验证}。",
    "\\textbf{NOT verified:} it differs from the sums below.": "\\textbf{未通过验证：}它与下面的求和不一致。",
    "The padded input (<0>) is cross-correlated with the stride-dilated upstream gradient (<1>) used as the kernel.":
        "填充后的输入（<0>）与按步幅膨胀的上游梯度（<1>）做互相关，后者充当卷积核。",
    "That gives <0> values, one for each kernel element (<1>).": "得到 <0> 个值，每个卷积核元素（<1>）一个。",
    "Every output of channel <0> adds the bias once, so its gradient is the sum of the upstream gradient over all positions: <1> terms.":
        "通道 <0> 的每个输出都加了一次偏置，因此其梯度是上游梯度在所有位置上的和：共 <1> 项。",
    "Stack the outputs and the inputs into vectors.": "把输出和输入分别排成向量。",
    "Each output is a linear combination of inputs, so the forward pass is one matrix product, and the input gradient multiplies by the transpose:":
        "每个输出都是输入的线性组合，因此前向传播是一次矩阵乘法，输入梯度则乘以它的转置：",
    "For this layer <0> would be a <1>~<2>~<3> matrix, too large to print usefully (this page prints it up to <4>~<5>~<6>); the relations above hold all the same.":
        "本层的 <0> 是 <1>~<2>~<3> 的矩阵，太大，打印出来没有意义（本页最多打印 <4>~<5>~<6>）；上面的关系同样成立。",
    "<0> is not drawn as a grid either: with <1> rows and <2> columns its entries would be too small to read (it is drawn up to <3> rows and columns).":
        "<0> 也不画成网格：它有 <1> 行 <2> 列，元素会小得无法辨认（最多画 <3> 行和列）。",
    "<0> is not drawn as a grid: with <1> rows and <2> columns its entries would be too small to read (it is drawn up to <3> rows and columns).":
        "<0> 不画成网格：它有 <1> 行 <2> 列，元素会小得无法辨认（最多画 <3> 行和列）。",
    # -- cost
    "Counting one multiply-add per product, with the products on the padding included (a dense implementation computes them):":
        "每个乘积计一次乘加，包括落在填充上的乘积（稠密实现也会计算它们）：",
    "Without the products that multiply a padding zero, the sums of Section~<0> have <1> products for <2> and <3> for <4>.":
        "去掉乘以填充零的乘积后，第~<0>~节的求和中 <2> 有 <1> 个乘积，<4> 有 <3> 个。",
    "The backward pass costs about twice the forward pass: one product <0> for <1> and one product <2> for <3> for every product <4> of the forward pass.":
        "反向传播的计算量约为前向的两倍：前向的每个乘积 <4> 对应 <1> 的一个乘积 <0> 和 <3> 的一个乘积 <2>。",
    # -- pooling
    "<0> is <1> when <2> is the first maximum of window <3> in row-major order---ties go to the first---and <4> otherwise; padding never wins.":
        "当 <2> 是窗口 <3> 按行优先顺序的第一个最大值时，<0> 为 <1>（相等时取第一个），否则为 <4>；填充永远不会胜出。",
    "The whole <0> of a window goes to the element that won it.": "窗口的整个 <0> 都交给窗口中的最大值元素。",
    "Figure~<0> draws where each element of <1> goes.": "图~<0> 画出了 <1> 的每个元素去往何处。",
    "Max pooling passes each window's upstream element <0> back whole to one position, the window's maximum, and nothing to the others:":
        "最大池化把每个窗口的上游梯度元素 <0> 整个传回一个位置，即窗口的最大值位置，其余位置为零：",
    "As an operation on the whole map, <0>: an \\emph{upsample} that writes each element of <1> at its window's <2> and <3> elsewhere (Figure~<4>).":
        "作为整张特征图上的运算，<0>：这是一次\\emph{上采样}，把 <1> 的每个元素写到其窗口的 <2> 处，其他位置为 <3>（图~<4>）。",
    "The forward pass has to remember where each maximum was.": "前向传播必须记住每个最大值的位置。",
    "\\textbf{Ties:} when several elements of a window are equal and largest, the whole element goes to the first of them in row-major order (as NumPy's <0>, which the generated code uses); it is never split.":
        "\\textbf{并列：}当窗口中有多个元素同为最大时，整个元素交给其中按行优先顺序的第一个（与生成代码所用的 NumPy <0> 相同）；它从不被拆分。",
    "Padding never wins a window.": "填充永远不会成为窗口的最大值。",
    "In a network the pooling's input is usually an activation's output, <0> element by element, where <1> is the pre-activation of the layer before (the course's <2>).":
        "在网络中，池化层的输入通常是激活函数逐元素作用的输出 <0>，其中 <1> 是前一层的激活前值（课程中的 <2>）。",
    "The chain rule carries the upsampled gradient through <0>, element by element (Figure~<1>):":
        "链式法则把上采样后的梯度逐元素地乘以 <0> 传下去（图~<1>）：",
    "The upsample (Section~<0>) gives <1>; multiplying it element by element by <2> at the pre-activation gives <3>.":
        "上采样（第~<0>~节）给出 <1>；再逐元素乘以激活前值处的 <2>，得到 <3>。",
    "with <0> this layer's upstream gradient and <1> the element-wise product (also written <2>).":
        "其中 <0> 是本层的上游梯度，<1> 是逐元素乘积（也记作 <2>）。",
    "For <0>, <1>: an element receives gradient only if it won its window \\emph{and} its pre-activation was positive.":
        "对 <0>，<1>：只有在窗口中胜出\\emph{并且}激活前值为正的元素才得到梯度。",
    "For <0>, <1>: an element keeps its share only if its pre-activation was positive.":
        "对 <0>，<1>：只有激活前值为正的元素才保留它分得的梯度。",
    "Every element of a window receives the same share of its <0>.": "窗口中的每个元素分得相同的一份 <0>。",
    "The divisor is the window size, padded zeros included.": "除数是窗口大小，包括填充的零。",
    "Average pooling gives every position of a window the same share of the window's upstream element, and an element in several windows adds its shares:":
        "平均池化把窗口的上游梯度元素平均分给窗口中的每个位置，属于多个窗口的元素把各份相加：",
    "Every window divides by its size, <0>.": "每个窗口都除以其大小 <0>。",
    "When the windows tile the input (stride equal to the window, no padding) each element is in exactly one window, and the upsample is a Kronecker product with a block of ones, <0>.":
        "当窗口恰好铺满输入（步幅等于窗口大小、无填充）时，每个元素恰属于一个窗口，上采样就是与全一块的 Kronecker 积 <0>。",
    "Here the windows tile the input:": "这里窗口恰好铺满输入：",
    "The windows tile the input, so the gradient is a Kronecker product:": "窗口恰好铺满输入，因此梯度是一个 Kronecker 积：",
    "The windows tile the input, so the gradient is a Kronecker product, followed by zero rows or columns the windows never reach:":
        "窗口铺满输入，因此梯度是一个 Kronecker 积，后面补上窗口从未到达的零行或零列：",
    # -- transposed convolution
    "Each input element <0> scatters <1> onto output position <2> (per axis: stride <3>, padding <4> at the beginning, dilation <5>) of every output channel <6> of its group; what lands outside the output is cropped.":
        "每个输入元素 <0> 把 <1> 散射到其所在组的每个输出通道 <6> 的输出位置 <2>（每个维度上：步幅 <3>，开头填充 <4>，膨胀 <5>）；落在输出之外的部分被裁掉。",
    "The backward pass reads <0> at the same positions: <1> is a plain (strided) convolution of <2> with the same weight, no flip and no channel swap.":
        "反向传播在相同位置读取 <0>：<1> 就是 <2> 与同一权重的普通（带步幅的）卷积，不翻转，也不交换通道。",
    "Each closed form was evaluated on this instance's symbols and compared with the sums above, element by element (<0> (<1>, <2>), (<3>, <4>) per axis, begin and end; a negative pad crops):":
        "每个闭式解都在本例的符号上求值，并与上面的求和逐元素比较（<0> 每个维度为 (<1>, <2>), (<3>, <4>)，分别为开头和末尾；负的填充表示裁剪）：",
    "The convolution <0> <1>, kernel <2>, stride <3>, padding <4>, no bias maps this layer's output shape back to its input shape, and its weight is this layer's weight, the same array.":
        "卷积 <0> <1>（卷积核 <2>，步幅 <3>，填充 <4>，无偏置）把本层的输出形状映射回输入形状，它的权重就是本层的权重，是同一个数组。",
    "Its forward pass is the convolution's backward pass: <0> with the convolution's upstream gradient set to this layer's input <1>.":
        "本层的前向传播就是该卷积的反向传播：<0>，其中卷积的上游梯度取为本层的输入 <1>。",
    "Its backward pass is the convolution's forward pass: <0> with the convolution's input set to this layer's upstream gradient <1>.":
        "本层的反向传播就是该卷积的前向传播：<0>，其中卷积的输入取为本层的上游梯度 <1>。",
    "<0> adds exactly the positions the convolution's stride never reads: the outputs agree with those of the layer without it, and every output in the convolution's unread tail holds its bias alone.":
        "<0> 恰好补上卷积的步幅从未读取的位置：其余输出与不加它时相同，卷积未读取的尾部的每个输出只含偏置。",
    "Nothing to check on this instance (no <0>, no unread position).": "本例无需检查（没有 <0>，也没有未读取的位置）。",
    "Unrolled, the convolution is <0> and this layer is <1> <2>: the same matrix <3>.":
        "展开后，该卷积为 <0>，本层为 <1> <2>：同一个矩阵 <3>。",
    "<0> has <1> rows and <2> columns, too many to print; derive a smaller instance to see it.":
        "<0> 有 <1> 行 <2> 列，太大，无法打印；推导一个更小的实例即可看到它。",
    # -- batch norm
    "The closed forms, with <0>, <1> and sums over the <2> values of a group (for <3> and <4>: over every element that uses them):":
        "闭式解如下，其中 <0>，<1>，求和遍历一组的 <2> 个值（对 <3> 和 <4>：遍历用到它们的所有元素）：",
    "\\textbf{Proven} against the elements below: <0> equal on all <1> elements, numerically; <2> equal on all <3> elements, numerically; <4> equal on all <5> elements, numerically. (Numerically: at random exact rational points, evaluated to <6> significant digits.)":
        "与下面的逐元素结果对照\\textbf{已证明}：<0> 在全部 <1> 个元素上数值相等；<2> 在全部 <3> 个元素上数值相等；<4> 在全部 <5> 个元素上数值相等。（数值验证：在随机的精确有理数点上，计算到 <6> 位有效数字。）",
    "Each node's gradient comes from the nodes it feeds, in the reverse order of the graph:":
        "每个节点的梯度来自它所流向的节点，按计算图的逆序计算：",
    "Substituting the nodes into each other gives the closed form of <0> above.": "把各节点依次代入，即得上面 <0> 的闭式解。",
    # -- chains
    "Layer <0> turns <1> into <2>; <3> is the input <4>.": "第 <0> 层把 <1> 变为 <2>；<3> 就是输入 <4>。",
    "For a convolution or a fully connected layer <0> is the notes' <1>.": "对卷积层或全连接层，<0> 就是讲义中的 <1>。",
    "The error term <0> is what layer <1> hands back; <2> is given.": "误差项 <0> 由第 <1> 层传回；<2> 是已知的。",
    "Layer <0>, a fully connected layer:": "第 <0> 层，全连接层：",
    "Layer <0>, flatten: the error takes the shape of the feature maps again:": "第 <0> 层，展平：误差恢复为特征图的形状：",
    "Layer <0>, max pooling: each window's error goes whole to its first maximum:": "第 <0> 层，最大池化：每个窗口的误差整个交给其第一个最大值：",
    "Layer <0>, an activation, <1>:": "第 <0> 层，激活函数，<1>：",
    "Together with the pooling layer after it, this is the notes' <0>:": "与其后的池化层合在一起，就是讲义中的 <0>：",
    "Layer <0>, a convolution: a full correlation with the rotated kernel, channels swapped:":
        "第 <0> 层，卷积：与旋转后的卷积核做全互相关，输入输出通道互换：",
    # -- more kinds: 1-D and 3-D convolutions and pooling, normalisations, activations,
    #    dropout, flatten, fully connected, softmax, losses, upsampling
    "Backpropagation through <0>-D average pooling, element by element": "<0> 维平均池化的反向传播：逐元素推导",
    "Backpropagation through <0>-D max pooling, element by element": "<0> 维最大池化的反向传播：逐元素推导",
    "Backpropagation through <0>-D convolution, element by element": "<0> 维卷积的反向传播：逐元素推导",
    "Backpropagation through a <0>-D convolution, element by element": "<0> 维卷积的反向传播：逐元素推导",
    "Backpropagation through batch normalisation, element by element": "批归一化的反向传播：逐元素推导",
    "Backpropagation through group normalisation, element by element": "组归一化的反向传播：逐元素推导",
    "Backpropagation through instance normalisation, element by element": "实例归一化的反向传播：逐元素推导",
    "Backpropagation through layer normalisation, element by element": "层归一化的反向传播：逐元素推导",
    "Backpropagation through the cross-entropy loss, element by element": "交叉熵损失的反向传播：逐元素推导",
    "Backpropagation through the mean squared error, element by element": "均方误差的反向传播：逐元素推导",
    "Backpropagation through dropout, element by element": "Dropout 的反向传播：逐元素推导",
    "Backpropagation through <0>, element by element": "<0> 的反向传播：逐元素推导",
    "Backpropagation through a flatten layer, element by element": "展平层的反向传播：逐元素推导",
    "Backpropagation through a fully connected layer, element by element": "全连接层的反向传播：逐元素推导",
    "Backpropagation through logsoftmax, element by element": "log-softmax 的反向传播：逐元素推导",
    "Backpropagation through softmax, element by element": "softmax 的反向传播：逐元素推导",
    "Backpropagation through nearest-neighbour upsampling, element by element": "最近邻上采样的反向传播：逐元素推导",
    "One mean <0> and one variance <1> for each channel, over the batch: <2> values share them.":
        "每个通道在批次上计算一个均值 <0> 和一个方差 <1>：共 <2> 个值共享它们。",
    "One mean <0> and one variance <1> for each sample and group of <2> channels (<3> groups), over its channels and the spatial axes: <4> values share them.":
        "每个样本的每组 <2> 个通道（共 <3> 组）在其通道和空间维度上计算一个均值 <0> 和一个方差 <1>：共 <4> 个值共享它们。",
    "One mean <0> and one variance <1> for each sample and channel, over the two spatial axes: <2> values share them.":
        "每个样本的每个通道在两个空间维度上计算一个均值 <0> 和一个方差 <1>：共 <2> 个值共享它们。",
    "One mean <0> and one variance <1> for each sample, over its last axis (<2>): <3> values share them.":
        "每个样本在最后一个维度（<2>）上计算一个均值 <0> 和一个方差 <1>：共 <3> 个值共享它们。",
    "\\textbf{Proven} against the elements below: <0> equal on all <1> elements, symbolically; <2> equal on all <3> elements, symbolically; <4> equal on all <5> elements, symbolically. (Symbolically: each mean written out as its sum, <6> replaced by <7>, and the difference expanded to <8>.)":
        "与下面的逐元素结果对照\\textbf{已证明}：<0> 在全部 <1> 个元素上符号相等；<2> 在全部 <3> 个元素上符号相等；<4> 在全部 <5> 个元素上符号相等。（符号验证：每个均值写成求和，<6> 替换为 <7>，差值展开后为 <8>。）",
    "\\textbf{Proven} against the elements below: <0> equal on all <1> elements, symbolically. (Symbolically: each mean written out as its sum, <2> replaced by <3>, and the difference expanded to <4>.)":
        "与下面的逐元素结果对照\\textbf{已证明}：<0> 在全部 <1> 个元素上符号相等。（符号验证：每个均值写成求和，<2> 替换为 <3>，差值展开后为 <4>。）",
    "The closed forms, with <0>, <1> and sums over the <2> values of a group:": "闭式解如下，其中 <0>，<1>，求和遍历一组的 <2> 个值：",
    "<0> is <1> with zero padding (begin, end) = (<2>, <3>) along its axis; a product with a padding zero is written <4> and adds nothing.":
        "<0> 是 <1> 沿其维度补零（开头, 末尾）= (<2>, <3>) 后的结果；与填充零的乘积记为 <4>，贡献为零。",
    "<0> is <1> with zero padding (begin, end) = (<2>, <3>), (<4>, <5>), (<6>, <7>) along the depth, height and width axes; a product with a padding zero is written <8> and adds nothing.":
        "<0> 是 <1> 沿深度、高度、宽度三个维度补零（开头, 末尾）= (<2>, <3>), (<4>, <5>), (<6>, <7>) 后的结果；与填充零的乘积记为 <8>，贡献为零。",
    "Closed forms, proven on this instance": "闭式解（已在本例上证明）",
    "Undo the stride: <0> puts <1> zeros between neighbours of <2> (<3>).": "撤销步幅：<0> 在 <2> 的相邻元素之间插入 <1> 个零（<3>）。",
    "Undo the stride: <0> puts <1> zeros between neighbours of <2> along every axis (<3>).":
        "撤销步幅：<0> 在每个维度上于 <2> 的相邻元素之间插入 <1> 个零（<3>）。",
    "Pad by (begin, end) = (<0>, <1>) (the kernel's reach minus the forward padding, plus the positions no window reads; negative crops), flip the kernel along every spatial axis and correlate with dilation <2>, channels swapped (a transposed convolution):":
        "补零（开头, 末尾）= (<0>, <1>)（卷积核覆盖范围减去前向填充，再加上没有窗口读取的位置；负数表示裁剪），把卷积核沿每个空间维度翻转，以膨胀 <2> 做互相关，并交换通道（即转置卷积）：",
    "Pad by (begin, end) = (<0>, <1>), (<2>, <3>), (<4>, <5>) (the kernel's reach minus the forward padding, plus the positions no window reads; negative crops), flip the kernel along every spatial axis and correlate with dilation <6>, channels swapped (a transposed convolution):":
        "补零（开头, 末尾）= (<0>, <1>), (<2>, <3>), (<4>, <5>)（卷积核覆盖范围减去前向填充，再加上没有窗口读取的位置；负数表示裁剪），把卷积核沿每个空间维度翻转，以膨胀 <6> 做互相关，并交换通道（即转置卷积）：",
    "\\textbf{Verified:} equal to the sums above on all <0> elements.": "\\textbf{已验证：}在全部 <0> 个元素上与上面的求和相等。",
    "\\textbf{Verified:} equal to the sums below on all <0> elements.": "\\textbf{已验证：}在全部 <0> 个元素上与下面的求和相等。",
    "\\textbf{Verified:} equal to the sums above on its element.": "\\textbf{已验证：}在其元素上与上面的求和相等。",
    "The weight gradient correlates the padded input with the stride-dilated upstream gradient as the kernel, stepping by the dilation <0>:":
        "权重梯度是填充后的输入与按步幅膨胀的上游梯度（充当卷积核）的互相关，步长为膨胀 <0>：",
    "The bias gradient sums the upstream gradient:": "偏置梯度是上游梯度之和：",
    "positions": "位置",
    "The convolution is a matrix product: row <0> of <1> holds the kernel where window <2> reads the input (padding and stride decide where), so the backward pass multiplies by the same matrix transposed---the transposed convolution.":
        "卷积是一次矩阵乘法：<1> 的第 <0> 行在窗口 <2> 读取输入的位置放置卷积核（位置由填充和步幅决定），因此反向传播乘以同一矩阵的转置——即转置卷积。",
    "\\textbf{Verified:} <0> equals the element-wise <1> above on all <2> elements.": "\\textbf{已验证：}<0> 在全部 <2> 个元素上等于上面逐元素的 <1>。",
    "The matrix <0> and its transpose as grids": "矩阵 <0> 及其转置的网格图",
    "Figure~<0> draws <1> of <2>, the kernel elements placed and the zeros left blank, and Figure~<3> its transpose, which the backward pass multiplies by: <4>.":
        "图~<0> 画出 <2> 中的 <1>（填入卷积核元素，零留空），图~<3> 画出反向传播所乘的转置：<4>。",
    "<0>: row <1> of <2> is output <3>, column <4> input <5>, and the entry is the kernel element that multiplies <6> in <7> (<8>); blank cells are zeros.":
        "<0>：<2> 的第 <1> 行对应输出 <3>，第 <4> 列对应输入 <5>，元素是 <7> 中与 <6> 相乘的卷积核元素（<8>）；空白单元格为零。",
    "Each row holds one window of the kernel; stepping to the next output shifts it by the stride.": "每行是卷积核的一个窗口；移到下一个输出时按步幅平移。",
    "<0>: the same entries mirrored, row <1> is <2> and column <3> the upstream element <4>.": "<0>：相同的元素沿对角线镜像，第 <1> 行对应 <2>，第 <3> 列对应上游梯度元素 <4>。",
    "Row <0> collects the kernel elements that met <1> in the forward pass: the sum of Section~<2>.": "第 <0> 行汇集前向传播中与 <1> 相遇的卷积核元素：即第~<2>~节的求和。",
    "The forward pass as a scatter: <0> times each kernel element is added into the output at <1> (the table is the output of the first channel, widened to where the scatter reaches).":
        "把前向传播看作散射：<0> 乘以每个卷积核元素，加到输出的 <1> 处（表格是第一个通道的输出，扩展到散射所及的范围）。",
    "Each closed form was evaluated on this instance's symbols and compared with the sums above, element by element (<0> (<1>, <2>) per axis, begin and end; a negative pad crops):":
        "每个闭式解都在本例的符号上求值，并与上面的求和逐元素比较（<0> 每个维度为 (<1>, <2>)，分别为开头和末尾；负的填充表示裁剪）：",
    "<0> has <1> rows and <2> columns, <3> of its entries are weights:":
        "<0> 有 <1> 行 <2> 列，其中 <3> 个元素是权重：",
    "and this layer's outputs are": "本层的输出为",
    "\\textbf{Verified:} the unrolled matrix of <0> <1>, kernel <2>, stride <3>, padding <4>, no bias, derived on its own, is this <5> entry by entry.":
        "\\textbf{已验证：}单独推导的 <0> <1>（卷积核 <2>，步幅 <3>，填充 <4>，无偏置）的展开矩阵与此 <5> 逐元素相同。",
    "Figure~<0> draws <1> as a grid, the kernel elements placed and the zeros left blank.": "图~<0> 把 <1> 画成网格，填入卷积核元素，零留空。",
    "<0> <1>: row <2> is output <3>, column <4> input <5>, and the entry the kernel element that carries <6> into <7>; blank cells are zeros.":
        "<0> <1>：第 <2> 行对应输出 <3>，第 <4> 列对应输入 <5>，元素是把 <6> 带入 <7> 的卷积核元素；空白单元格为零。",
    "Column <0> is the scatter of <1>; read as rows of <2>, the same entries are the convolution this layer is the transpose of.":
        "第 <0> 列是 <1> 的散射；按 <2> 的行来读，相同的元素就是本层所转置的那个卷积。",
    "the one-hot targets, not differentiated": "one-hot 目标，不求导",
    "the targets, not differentiated": "目标，不求导",
    "given, not differentiated": "给定，不求导",
    "<0> over the classes; every backward pass of a classifier starts from <1>.": "<0> 在各类别上计算；分类器的反向传播都从 <1> 开始。",
    "The class targets (PyTorch's <0>-based classes): sample <1> has class <2> (<3> chooses others).":
        "类别目标（PyTorch 的类别从 <0> 开始编号）：样本 <1> 的类别为 <2>（<3> 可另选）。",
    "The mean divides by the number of counted samples, those whose target is not the ignore index; an ignored sample contributes nothing and gets gradient <0>.":
        "均值除以计入的样本数，即目标不是忽略下标的样本；被忽略的样本没有贡献，梯度为 <0>。",
    "The rule, proven on all <0> elements, symbolically, against the sums below:": "规则如下，已在全部 <0> 个元素上与下面的求和做符号证明：",
    "The keep-mask <0> (<1> keeps an element, <2> drops it) is an input of the layer, drawn once per forward pass; it is not differentiated, and the backward pass uses the same mask and the same scale <3> as the forward pass.":
        "保留掩码 <0>（<1> 表示保留元素，<2> 表示丢弃）是本层的输入，每次前向传播抽取一次；它不参与求导，反向传播使用与前向相同的掩码和相同的缩放 <3>。",
    "The sum <0> is what a log-softmax gradient most often misses: every output <1> depends on every input through <2>.":
        "求和项 <0> 是 log-softmax 梯度最常漏掉的部分：每个输出 <1> 都通过 <2> 依赖于每个输入。",
    "The stated derivative <0> is proven on all <1> pairs <2>, symbolically, against the derivative of its explicit form.":
        "给出的导数 <0> 已在全部 <1> 对 <2> 上与其显式形式的导数做符号证明。",
    "A figure of the upsample is drawn for <0>-D and <1>-D pooling only.": "上采样的图只为 <0> 维和 <1> 维池化绘制。",
    "As an operation on the whole map, <0>: an \\emph{upsample} that writes each element of <1> at its window's <2> and <3> elsewhere.":
        "作为整张特征图上的运算，<0>：这是一次\\emph{上采样}，把 <1> 的每个元素写到其窗口的 <2> 处，其他位置为 <3>。",
    "all elements": "所有元素",
    "One slope <0> serves every element, so its gradient sums over the whole batch and every position.":
        "所有元素共用一个斜率 <0>，因此它的梯度对整个批次和所有位置求和。",
    "At <0> the slope branch applies, as in PyTorch: <1> there.": "在 <0> 处取斜率分支，与 PyTorch 一致：此处 <1>。",
    "Every output depends on every input along the axis: the Jacobian <0> is not diagonal, so the gradient is not <1>.":
        "每个输出都依赖于该维度上的所有输入：雅可比矩阵 <0> 不是对角阵，因此梯度不是 <1>。",
    "SymPy differentiates with the stated <0>, which is proven equal to the derivative of <1>.": "SymPy 使用给出的 <0> 求导，它已被证明等于 <1> 的导数。",
    "Nearest-neighbour upsampling copies every element into a <0> block; its gradient is the sum of <1> over that block (sum pooling with <2> windows), the upsample of a pooling layer's error turned around.":
        "最近邻上采样把每个元素复制到一个 <0> 块中；其梯度是 <1> 在该块上的和（窗口为 <2> 的求和池化），正好与池化层误差的上采样相反。",
    # -- convolution variants: stride 1, uneven strides, dilation, groups, no bias
    "row <0> and column <1> of the input": "输入的第 <0> 行、第 <1> 列",
    "row <0> and column <1> of the kernel": "卷积核的第 <0> 行、第 <1> 列",
    "row <0> and column <1> of the output": "输出的第 <0> 行、第 <1> 列",
    "output channel <0>, row <1> and column <2> of the kernel": "卷积核的第 <0> 输出通道、第 <1> 行、第 <2> 列",
    "Undo the stride: the stride is <0>, so <1> stays as it is (<2>).": "撤销步幅：步幅为 <0>，因此 <1> 保持不变（<2>）。",
    "Undo the stride: insert <0> zero rows between the rows of <1> and <2> zero columns between its columns: the <3> map becomes <4>.":
        "撤销步幅：在 <1> 的相邻行之间插入 <0> 行零，相邻列之间插入 <2> 列零：<3> 的特征图变为 <4>。",
    "Here:": "这里：",
    "Rotate each kernel map by <0> (flip rows and columns):": "把每个卷积核旋转 <0>（行、列都翻转）：",
    "Cross-correlate the padded map with the rotated kernel: the result is <0>, the size of <1>.":
        "把填充后的特征图与旋转后的卷积核做互相关：结果为 <0>，与 <1> 的尺寸相同。",
    "Cross-correlate the padded map with the rotated kernel, its taps spread by the dilation <0>: the result is <1>, the size of <2>.":
        "把填充后的特征图与旋转后的卷积核做互相关，卷积核各元素按膨胀 <0> 隔开：结果为 <1>，与 <2> 的尺寸相同。",
    "The same sums as a full correlation: at stride <0> <1> inserts no zeros into <2>, <3> adds the kernel's reach around it (grey), and the kernel turned half a turn slides over it; under it here, the window of <4>.":
        "把同样的求和写成全互相关：步幅为 <0> 时 <1> 不在 <2> 中插入零，<3> 在四周补上卷积核所能覆盖的范围（灰色），旋转 180 度的卷积核在其上滑动；图中卷积核下方是 <4> 的窗口。",
    "Every output adds the bias once, so its gradient is the sum of the upstream gradient over all positions: <0> terms.":
        "每个输出都加了一次偏置，因此其梯度是上游梯度在所有位置上的和：共 <0> 项。",
    "\\textbf{Verified:} SymPy expanded this closed form and it is exactly the element-wise sum of Section~<0>.":
        "\\textbf{已验证：}SymPy 展开了该闭式解，它与第~<0>~节的逐元素求和完全相同。",
    "Here <0> has <1> rows (outputs) and <2> columns (inputs), <3> of its entries nonzero:": "这里 <0> 有 <1> 行（输出）和 <2> 列（输入），其中 <3> 个元素非零：",
    "Multiplying by <0> sends each <1> back along the same kernel elements; for example": "乘以 <0> 就是把每个 <1> 沿相同的卷积核元素送回去；例如",
    "\\textbf{Verified:} every row of <0> is exactly the sum for <1> in Section~<2>.": "\\textbf{已验证：}<0> 的每一行都与第~<2>~节中 <1> 的求和完全相同。",
    "That is why the input gradient is a \\emph{transposed} convolution.": "这就是输入梯度是\\emph{转置}卷积的原因。",
    "Figure~<0> draws <1> as a grid, the kernel elements placed and the zeros left blank, and Figure~<2> its transpose, which the backward pass multiplies by.":
        "图~<0> 把 <1> 画成网格（填入卷积核元素，零留空），图~<2> 画出反向传播所乘的转置。",
    "This is the textbook's <0>, with the division rounded down because it is not exact here: <1>.": "这就是教材中的 <0>，这里除不尽，所以向下取整：<1>。",
    "Because <0> is not a multiple of <1> and <2> is not a multiple of <3>, the last row and the last column of the padded input are never read by the forward pass, so every input element in row <4> or column <5> has gradient exactly <6> (forgetting this is a classic bug in hand-written backward passes).":
        "由于 <0> 不是 <1> 的倍数，<2> 不是 <3> 的倍数，前向传播从不读取填充后输入的最后一行和最后一列，因此第 <4> 行或第 <5> 列的每个输入元素的梯度恰为 <6>（忘记这一点是手写反向传播的经典错误）。",
    "Because <0> is not a multiple of <1> and <2> is not a multiple of <3>, the last row and the last column of the padded input are never read by the forward pass; only padding lies there, so no input element is affected.":
        "由于 <0> 不是 <1> 的倍数，<2> 不是 <3> 的倍数，前向传播从不读取填充后输入的最后一行和最后一列；那里只有填充，因此不影响任何输入元素。",
    "where <0>, as this layer has no padding.": "其中 <0>，因为本层没有填充。",
    "where <0> is <1> with <2> zero rows added above, <3> below, <4> zero column on the left and <5> on the right (so <6>).":
        "其中 <0> 是 <1> 上方补 <2> 行零、下方补 <3> 行、左侧补 <4> 列零、右侧补 <5> 列后的结果（因此 <6>）。",
    "where <0> is <1> with <2> zero row added above, <3> below, <4> zero columns on the left and <5> on the right (so <6>).":
        "其中 <0> 是 <1> 上方补 <2> 行零、下方补 <3> 行、左侧补 <4> 列零、右侧补 <5> 列后的结果（因此 <6>）。",
    "where <0> is <1> with <2> zero rows added above, <3> below, <4> zero columns on the left and <5> on the right (so <6>).":
        "其中 <0> 是 <1> 上方补 <2> 行零、下方补 <3> 行、左侧补 <4> 列零、右侧补 <5> 列后的结果（因此 <6>）。",
    "never read": "从未读取",
    "The gradient of <0> is <1>: the forward pass never reads them (see the output size in Section~<2>).": "<0> 的梯度为 <1>：前向传播从不读取它们（见第~<2>~节的输出尺寸）。",
    "That gives <0> values, of which the first <1> are the kernel gradient (the rest pair the kernel with the rows and columns the forward never read).":
        "得到 <0> 个值，其中前 <1> 个是卷积核梯度（其余的对应前向从未读取的行和列）。",
    "The padded input (<0>) is cross-correlated with the stride-dilated upstream gradient (<1>) used as the kernel, moving in steps of the dilation <2>.":
        "填充后的输入（<0>）与按步幅膨胀的上游梯度（<1>）做互相关，后者充当卷积核，移动步长为膨胀 <2>。",
    "With <0> groups, <1> runs over the <2> input channels of output channel <3>'s group only.": "分为 <0> 组时，<1> 只遍历输出通道 <3> 所在组的 <2> 个输入通道。",
    "With <0> groups, channel <1> of <2> here means the <3>-th input channel of output channel <4>'s group.":
        "分为 <0> 组时，这里 <2> 的通道 <1> 指输出通道 <4> 所在组的第 <3> 个输入通道。",
    "the one output channel of": "为",
    "'s group": "所在组的唯一输出通道",
    "The layer computes the cross-correlation of its input with a kernel, as every deep-learning library does (a ``convolution'' in the course notes).":
        "本层计算输入与卷积核的互相关，与各深度学习框架一致（课程讲义中称为“卷积”）。",
    "The sums above follow two rules that hold for every size; here they are with this layer's numbers.":
        "上面的求和遵循两条对任意尺寸都成立的规则；下面代入本层的数值写出。",
    # -- pooling variants: overlapping windows, padding, ceil_mode
    "Windows overlap (the stride is smaller than the window): an element in several windows adds what it receives from each.":
        "窗口相互重叠（步幅小于窗口）：属于多个窗口的元素把从每个窗口收到的值相加。",
    "<0> is the number of input elements window <1> holds: padding is left out of the divisor.":
        "<0> 是窗口 <1> 包含的输入元素个数：填充不计入除数。",
    "The upsample of average pooling: every position of a window (outlined in the colour of its <0> element) receives the same share of it, <1>, the window's element divided by the window's divisor <2>; where windows overlap, the shares add up.":
        "平均池化的上采样：窗口（用其 <0> 元素的颜色框出）中的每个位置收到相同的一份 <1>，即该窗口的元素除以窗口的除数 <2>；窗口重叠处各份相加。",
    "The padding (grey) is not counted: the divisor is the inputs held.": "填充（灰色）不计入：除数是窗口包含的输入个数。",
    "The padding (grey) counts in the divisor: its shares are dropped, as the padding is not an input.": "填充（灰色）计入除数：它分得的份额被丢弃，因为填充不是输入。",
    "Only the first two windows along each axis are drawn (the others overlap too many cells to read); the rest repeat the pattern.":
        "每个维度只画出前两个窗口（其余窗口重叠太多，难以辨认）；其余依此类推。",
    "<0> is the number of input elements window <1> holds (count\\_include\\_pad off): <2> for a window inside the input, fewer where it covers padding.":
        "<0> 是窗口 <1> 包含的输入元素个数（count\\_include\\_pad 关闭）：完全在输入内的窗口为 <2>，覆盖填充的窗口更少。",
    "Not here: the stride <0> is not the window <1> and the input is padded, so the sum above is the rule.": "这里不适用：步幅 <0> 不等于窗口 <1>，且输入有填充，因此规则就是上面的求和。",
    "ceil\\_mode (PyTorch): the number of windows is rounded up, so a last window may run past the padded input, whose positions it does not read; a window that would start in the right padding is dropped.":
        "ceil\\_mode（PyTorch）：窗口数向上取整，因此最后一个窗口可能超出填充后的输入，超出的位置不被读取；起点落在右侧填充中的窗口被舍弃。",
    "Dotted cells lie past the padded input, where a ceil\\_mode window reaches: nothing is there to read or to receive.":
        "虚线单元格位于填充后的输入之外，是 ceil\\_mode 窗口所及之处：那里没有可读取或接收的值。",
    "Padding (grey) never wins.": "填充（灰色）永远不会胜出。",
    "Every window divides by its size, <0>, padded zeros included (count\\_include\\_pad).": "每个窗口都除以其大小 <0>，包括填充的零（count\\_include\\_pad）。",
    # -- transposed convolution with output_padding
    "Dashed cells are the positions <0> adds at the end of the output: kept instead of cropped, or past the scatter's reach (the bias alone lands there).":
        "虚线单元格是 <0> 在输出末尾添加的位置：它们被保留而不裁掉，或位于散射所及范围之外（那里只有偏置）。",
    "Here the convolution leaves the last <0>, <1> position(s) of its padded input unread (per axis), <2> modulo the stride.":
        "这里该卷积在每个维度上分别有填充后输入的最后 <0>、<1> 个位置未被读取，即 <2> 对步幅取模。",
    # -- chains
    "Layer <0>, the mean squared error:": "第 <0> 层，均方误差：",
    "Layer <0>, the cross-entropy loss:": "第 <0> 层，交叉熵损失：",
    "Layer <0>, average pooling: each element of a window gets an equal share:": "第 <0> 层，平均池化：窗口中的每个元素分得相等的一份：",
    # -- words set in math: the notes beside the sums, \\text{...} in formulas
    "feeds <0>": "参与 <0>",
    "in <0> outputs, <1> on padding": "出现在 <0> 个输出中，其中 <1> 个在填充上",
    "in <0> outputs": "出现在 <0> 个输出中",
    "<0> terms": "共 <0> 项",
    "with": "其中\\ ",  # in \text{with }: xeCJK drops a space after Chinese
    "step": "步长",
    "windows": "窗口",
    "window": "窗口",
    "per axis:": "每个维度：",
    "dilation": "膨胀",
    "stride": "步幅",
    "otherwise": "其他情况",
    "<0> also feeds <1>; <2> also feeds <3>; <4> feed <5>": "<0> 还流向 <1>；<2> 还流向 <3>；<4> 流向 <5>",
    # -- footer
    "Generated by symbackprop <0> with <1>": "由 symbackprop <0> 生成，命令为 <1>",

    # -- --detail: one element per shape of sum
    "Two elements have the same shape of sum when their sums have the same terms, shifted to other positions, samples or channels; the number on the right of an element written out says how many elements share its shape (<0> lists every element, <1> one of each array).":
        "两个元素的求和若项相同、只是平移到了别的位置、样本或通道，就称它们有相同的求和形状；写出的元素右侧的数字表示有多少个元素与它形状相同（<0> 列出每个元素，<1> 每个数组只写一个）。",
    "<0>: <1> elements in <2> shapes of sum; written out is the first element of each shape.":
        "<0>：<1> 个元素，共 <2> 种求和形状；每种形状写出其第一个元素。",
    "<0>: <1> elements in <2> shapes of sum; written out is the first element of each shape for <3> of them (numbers of terms from the fewest to the most); the other <4> shapes hold <5> elements.":
        "<0>：<1> 个元素，共 <2> 种求和形状；其中 <3> 种各写出第一个元素（按项数从少到多），其余 <4> 种形状共含 <5> 个元素。",
    "<0>: <1> elements, all with one shape of sum; written out is the first.":
        "<0>：<1> 个元素，求和形状都相同；只写出第一个。",
    "<0> element": "<0> 个元素",
    "<0> elements": "<0> 个元素",
    "<0> element; <1> terms": "<0> 个元素；<1> 项",
    "<0> elements; <1> terms": "<0> 个元素；<1> 项",
    "<0> elements; feeds <1>": "<0> 个元素；参与 <1>",
    "<0> elements; in <1> outputs": "<0> 个元素；出现在 <1> 个输出中",
    "<0> elements; in <1> outputs, <2> on padding": "<0> 个元素；出现在 <1> 个输出中，其中 <2> 个落在填充上",
    "\\textbf{Verified:} the closed forms of <0> equal the sums below on all <1> elements.":
        "\\textbf{已验证：}<0> 的闭式在全部 <1> 个元素上与下面的求和相等。",
    "\\textbf{Verified:} the closed forms of <0>, <1> and <2> equal the sums below on all <3> elements.":
        "\\textbf{已验证：}<0>、<1> 和 <2> 的闭式在全部 <3> 个元素上与下面的求和相等。",
    "SymPy differentiated <0> layer by layer (method <1>); each error term is written with the next one, from the last layer to the first:":
        "SymPy 逐层对 <0> 求导（方法 <1>）；每个误差项都用后一层的误差项写出，从最后一层到第一层：",
    "In matrix form: the weight gradient is an outer product, one column of inputs times one row of upstream gradients, and the input gradient sends the upstream gradient back through the transposed weights.":
        "写成矩阵形式：权重梯度是一个外积，即一列输入乘以一行上游梯度；输入梯度则是上游梯度经转置的权重传回。",
    # -- the compact chain's walk table
    "error term handed back": "传回的误差项",
    "a fully connected layer": "全连接层",
    "a convolution: a full correlation with the rotated kernel, channels swapped": "卷积：与旋转后的卷积核做完全相关，输入输出通道互换",
    "max pooling: each window's error goes whole to its first maximum": "最大池化：每个窗口的误差全部传给它的第一个最大值",
    "an activation, <0>": "激活函数，<0>",
    "flatten: the error takes the shape of the feature maps again": "展平：误差恢复为特征图的形状",
    "with the pooling layer after it, the notes' <0>": "与其后的池化层合在一起，即讲义中的 <0>",
    # -- the worked example in numbers
    "A worked example in numbers": "数值算例",
    "To check a computation by hand: small integers for <0> and <1>, put into the sums above; every number below is the derivation's expression at these integers.":
        "为了便于手算验证：给 <0> 和 <1> 取较小的整数，代入上面的求和；下面的每个数都是推导所得表达式在这些整数处的值。",
    "To check a computation by hand: small integers for <0>, the parameters and <1>, put into the sums above; every number below is the derivation's expression at these integers.":
        "为了便于手算验证：给 <0>、各参数和 <1> 取较小的整数，代入上面的求和；下面的每个数都是推导所得表达式在这些整数处的值。",
    "The input <0> and the upstream gradient <1>:": "输入 <0> 和上游梯度 <1>：",
    "The input <0>, the weight <1> and the upstream gradient <2>:": "输入 <0>、权重 <1> 和上游梯度 <2>：",
    "The input <0>, the weight <1>, the bias <2> and the upstream gradient <3>:": "输入 <0>、权重 <1>、偏置 <2> 和上游梯度 <3>：",
    "The input <0>, the constant <1> (given, not differentiated) and the upstream gradient <2>:":
        "输入 <0>、常数 <1>（已知，不求导）和上游梯度 <2>：",
    "The input <0>, the targets <1> (given, not differentiated) and the upstream gradient <2>:":
        "输入 <0>、目标 <1>（已知，不求导）和上游梯度 <2>：",
    "The input <0>, the one-hot targets <1> (given, not differentiated) and the upstream gradient <2>:":
        "输入 <0>、one-hot 目标 <1>（已知，不求导）和上游梯度 <2>：",
    "One element of each, written out.": "每个数组写出一个元素。",
    "Results that are not whole numbers (or short decimals) are rounded to <0> decimals.":
        "不是整数（或短小数）的结果四舍五入到 <0> 位小数。",
    "The boxed entries of <0> are the windows' maxima (all entries differ, so no window has a tie): each window's upstream gradient goes whole to its maximum, and an entry that is no window's maximum gets gradient <1>.":
        "<0> 中加框的元素是各窗口的最大值（所有元素互不相同，因此没有窗口出现并列）：每个窗口的上游梯度全部传给它的最大值，不是任何窗口最大值的元素梯度为 <1>。",
    "A worked example in numbers is left out here: it would print <0> numbers (this page prints up to <1>); a smaller <2> shows it.":
        "这里略去数值算例：它要打印 <0> 个数（本页最多打印 <1> 个）；换一个更小的 <2> 即可显示。",
    "A worked example in numbers is left out here: its maps are <0> x <1>, larger than the <2> x <3> this page prints.":
        "这里略去数值算例：它的特征图为 <0>×<1>，大于本页最多能打印的 <2>×<3>。",
    "On a smaller input, <0> prints one.": "在更小的输入上，<0> 会打印数值算例。",
    "<0>: <1> elements in <2> shapes of sum; written out is the first with the most terms.":
        "<0>：<1> 个元素，共 <2> 种求和形状；只写出项数最多的第一个元素。",
    "<0>: <1> elements in <2> shape of sum; written out is the first with the most terms.":
        "<0>：<1> 个元素，共 <2> 种求和形状；只写出项数最多的第一个元素。",
    "<0>: <1> elements in <2> shapes of sum; written out is the first element of each shape for <3> of them (every number of terms that occurs); the other <4> shapes hold <5> elements.":
        "<0>：<1> 个元素，共 <2> 种求和形状；其中 <3> 种各写出第一个元素（出现的每种项数都有），其余 <4> 种形状共含 <5> 个元素。",
    "feeds <0> (<1> outputs)": "参与 <0>（共 <1> 个输出）",
    "Layer <0>: <1>(<2>)": "第 <0> 层：<1>(<2>)",
    "the cross-entropy loss": "交叉熵损失",
    "the mean squared error": "均方误差",
    "average pooling: each element of a window gets an equal share": "平均池化：窗口中的每个元素分得相等的一份",
    "a normalisation (the gradient through the batch statistics)": "归一化（梯度也经过批统计量）",
    "<0> is the number of positions of window <1> inside the padded input, padded zeros included (PyTorch's divisor): the window size, except for a ceil\\_mode window that runs past the padded input.":
        "<0> 是窗口 <1> 在填充后输入中的位置个数，填充的零也计入（PyTorch 的除数）：即窗口大小，只有超出填充后输入的 ceil\\_mode 窗口例外。",
    "<0> is the number of positions of window <1> inside the padded input (count\\_include\\_pad): <2> except for a window ceil\\_mode clips at the end.":
        "<0> 是窗口 <1> 在填充后输入中的位置个数（count\\_include\\_pad）：除了末尾被 ceil\\_mode 截断的窗口，都是 <2>。",
    "To check the walk by hand: small integers for the input, the parameters and the last error term <0>, put into each layer's sums; forward layer by layer, then backward boundary by boundary.":
        "为了便于手算验证整个反向计算：给输入、各参数和最后的误差项 <0> 取较小的整数，代入每一层的求和；先逐层前向，再逐个层边界反向。",
    "The input <0>, the parameters and the given error term <1>:": "输入 <0>、各参数和给定的误差项 <1>：",
    "The activations, layer by layer:": "逐层的激活值：",
    "The error terms, layer boundary by layer boundary:": "逐个层边界的误差项：",
    "The parameter gradients:": "参数梯度：",
    "Each closed form was evaluated on this instance's symbols and compared with the sums above, element by element (<0> (<1>, <2>), (<3>, <4>), (<5>, <6>) per axis, begin and end; a negative pad crops):":
        "每个闭式解都在本例的符号上求值，并与上面的求和逐元素比较（<0> 每个维度为 (<1>, <2>), (<3>, <4>), (<5>, <6>)，分别为开头和末尾；负的填充表示裁剪）：",
    # -- residual blocks
    "residual sum <0> (the block: layers <1>--<2>)": "残差和 <0>（残差块：第 <1>--<2> 层）",
    "Layer <0>: residual sum <1> (the block: layers <2>--<3>)": "第 <0> 层：残差和 <1>（残差块：第 <2>--<3> 层）",
    "the residual sum <0> (<1>, the block: layers <2>--<3>): its error term goes on unchanged to the block's output, and along the identity path to the block's input <4>, where it is added to what the block hands back":
        "残差和 <0>（<1>，残差块：第 <2>--<3> 层）：它的误差项原样传到残差块的输出，并沿恒等路径传到残差块的输入 <4>，在那里与残差块传回的误差相加",
    "its input <0> also feeds the residual sum, so its error term adds the two paths": "它的输入 <0> 也参与残差和，因此它的误差项是两条路径之和",
    "the above": "上式",
    "(the identity path: <0> also feeds the residual sum)": "（恒等路径：<0> 也参与残差和）",
    # -- words inside an inline formula's \text{...}
    "groups": "组数",
    "the identity path": "恒等路径",
    "through the block (layer <0>)": "经过残差块（第 <0> 层）",
    # -- index base 0, batches, dilated pooling
    "Indices start at <0> as in Python (the default <1> gives the textbook's).": "下标与 Python 一致，从 <0> 开始（默认的 <1> 与教材一致）。",
    "sample <0>, row <1> and column <2> of the input": "输入的第 <0> 个样本、第 <1> 行、第 <2> 列",
    "sample <0>, row <1> and column <2> of the output": "输出的第 <0> 个样本、第 <1> 行、第 <2> 列",
    "Sums of more than <0> terms show their first <1> and last <2>.": "超过 <0> 项的求和只显示开头 <1> 项和末尾 <2> 项。",
    "The padded input (<0>) is cross-correlated with the stride-dilated upstream gradient (<1>) used as the kernel; the sum runs over the samples of the batch.":
        "填充后的输入（<0>）与按步幅膨胀的上游梯度（<1>）做互相关，后者充当卷积核；求和遍历批中的所有样本。",
    "Every output adds the bias once, so its gradient is the sum of the upstream gradient over the batch and all positions: <0> terms.":
        "每个输出都加了一次偏置，因此其梯度是上游梯度在整个批和所有位置上的和：共 <0> 项。",
    "for the batch of <0>": "整个批（<0>）",
    "Dilation <0>: a window reads every <1>-th element, and only those receive its gradient.":
        "膨胀 <0>：窗口每 <1> 个元素读取一个，也只有被读取的元素接收它的梯度。",
}

#: "Not here: <reasons>, so the sum above is the rule." for every combination of the
#: reasons the Kronecker form of average pooling does not apply.
_NO_KRON = [("the stride <> is not the window <>", "步幅 <> 不等于窗口 <>"),
            ("the input is padded", "输入有填充"),
            ("ceil\\_mode clips the last windows", "ceil\\_mode 截断了最后的窗口"),
            ("the window is dilated", "窗口有膨胀")]


def _numbered(text: str) -> str:
    parts = text.split("<>")
    return "".join(part + (f"<{index}>" if index < len(parts) - 1 else "")
                   for index, part in enumerate(parts))


def _no_kron_phrases() -> dict[str, str]:
    phrases = {}
    for mask in range(1, 2 ** len(_NO_KRON)):
        chosen = [reason for bit, reason in enumerate(_NO_KRON) if mask >> bit & 1]
        english = [words for words, _ in chosen]
        chinese = [words for _, words in chosen]
        joined = english[0] if len(english) == 1 else \
            ", ".join(english[:-1]) + " and " + english[-1]
        phrases[_numbered(f"Not here: {joined}, so the sum above is the rule.")] = _numbered(
            "这里不适用：" + ("，".join(chinese[:-1]) + "，且" if len(chinese) > 1 else "")
            + (" " if len(chinese) > 1 and chinese[-1][0].isascii() else "")
            + f"{chinese[-1]}，因此规则就是上面的求和。")
    return phrases


PHRASES.update(_no_kron_phrases())

#: Parts of a comma-separated list (a layer's description), each translated alone.
FRAGMENTS: dict[str, str] = {
    "kernel <0>": "卷积核 <0>",
    "stride <0>": "步幅 <0>",
    "padding <0>": "填充 <0>",
    "dilation <0>": "膨胀 <0>",
    "groups <0>": "分组 <0>",
    "no bias": "无偏置",
    "padding left out of the divisor": "填充不计入除数",
    "padding counts in the divisor": "填充计入除数",
    "ceil\\_mode": "ceil\\_mode",
    "output\\_padding <0>": "output\\_padding <0>",
    "padding (<0>, <1>)": "填充 (<0>, <1>)",
    "stride (<0>, <1>)": "步幅 (<0>, <1>)",
    "dilation (<0>, <1>)": "膨胀 (<0>, <1>)",
    "reduction mean": "归约方式 mean",
    "reduction sum": "归约方式 sum",
    "alpha <0>": "alpha <0>",
    "beta <0>": "beta <0>",
    "threshold <0>": "阈值 <0>",
    "negative slope <0>": "负斜率 <0>",
    "one slope": "单一斜率",
    "init <0>": "初值 <0>",
    "p <0>": "p <0>",
    "<0> along dim <1>": "<0>，沿维度 <1>",
    "along dim <0>": "沿维度 <0>",
    "<0> x2 (nearest)": "<0> x2（最近邻）",
}
